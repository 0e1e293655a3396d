"""The E2B backend: each task attempt in its own E2B cloud sandbox, through the ``e2b`` SDK.

Importing this package does not import ``e2b``: that happens when a run starts. See
``docs/e2b.md`` for set-up, templates, the two ways a sandbox is prepared, costs, limits and
cleanup after a crash.
"""

from __future__ import annotations

from .backend import DEFAULT_TEMPLATE, E2BBackend
from .pricing import E2BRates

__all__ = ["DEFAULT_TEMPLATE", "E2BBackend", "E2BRates"]
