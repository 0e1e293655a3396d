"""What a sandbox costs: E2B bills every second a sandbox runs, per vCPU and per GiB of memory."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ...errors import ValidationError

__all__ = ["DEFAULT_MEMORY_GIB", "DEFAULT_VCPUS", "E2BRates"]

DEFAULT_VCPUS = 2.0
DEFAULT_MEMORY_GIB = 0.5
"""E2B's default sandbox size, used when a sandbox's size cannot be asked (it is already gone)."""


@dataclass(frozen=True)
class E2BRates:
    """Per-second prices of a running sandbox, in USD.

    The defaults are E2B's published usage prices: $0.000014 per vCPU per second and $0.0000045
    per GiB of memory per second (2 vCPU and 512 MiB: $0.109/hour; 8 vCPU and 4 GiB: $0.468/hour).
    ``vcpus`` and ``memory_gib`` fix the sandbox size; by default the size E2B reports for the
    run's first sandbox is used, once per run.
    """

    usd_per_vcpu_second: float = 0.000014
    usd_per_gib_second: float = 0.0000045
    vcpus: float | None = None
    memory_gib: float | None = None

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value is None and name in ("vcpus", "memory_gib"):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValidationError(f"E2BRates({name}={value!r}) must be a number.")
            if not math.isfinite(value) or value < 0:
                raise ValidationError(f"E2BRates({name}={value!r}) must be a finite amount >= 0.")

    @property
    def needs_size(self) -> bool:
        """True when the sandbox size must be asked from E2B."""
        return self.vcpus is None or self.memory_gib is None

    def per_second(self, vcpus: float, memory_gib: float) -> float:
        """USD per second of a sandbox of this size (the fixed sizes win over the ones given)."""
        cpus = self.vcpus if self.vcpus is not None else vcpus
        memory = self.memory_gib if self.memory_gib is not None else memory_gib
        return cpus * self.usd_per_vcpu_second + memory * self.usd_per_gib_second

    def describe(self) -> Mapping[str, Any]:
        return asdict(self)
