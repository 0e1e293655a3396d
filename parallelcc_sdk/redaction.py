"""Keeping secrets out of everything the SDK writes or raises.

Two nets: the exact values the SDK knows are secret (API keys, tokens, values of env vars whose
names contain KEY, TOKEN or SECRET), and patterns for credentials it was never told about.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "[REDACTED]"
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)
# Values shorter than this are too likely to occur by chance ("1", "true") to be masked by value.
_MIN_SECRET_LEN = 8
_PATTERNS = (
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)(authorization\s*[:=]\s*)(?:bearer\s+|basic\s+)?[^\s\"',]+"),
    re.compile(r"(?i)(x-api-key\s*[:=]\s*)[^\s\"',]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-\.=]{8,}"),
    re.compile(r"e2b_[A-Za-z0-9]{16,}"),
    # Cloud credentials an agent may be given for Bedrock or Vertex.
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    re.compile(r"(?i)(aws_secret_access_key\s*[:=]\s*)[^\s\"',]+"),
    re.compile(
        r"-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----.*?"
        r"-----END (?:RSA |EC |OPENSSH )?PRIVATE KEY-----",
        re.DOTALL,
    ),
)


def is_secret_name(name: str) -> bool:
    """True for environment variable names that hold secrets by convention."""
    return bool(_SECRET_NAME.search(name))


def secret_values(env: Mapping[str, str]) -> list[str]:
    """The values of ``env`` whose names say they are secret."""
    return [v for k, v in env.items() if is_secret_name(k) and len(v) >= _MIN_SECRET_LEN]


class Redactor:
    """Masks known secret values and credential-shaped strings."""

    def __init__(self, secrets: Iterable[str] = (), *, include_environment: bool = True) -> None:
        values = {s for s in secrets if s and len(s) >= _MIN_SECRET_LEN}
        if include_environment:
            values.update(secret_values(dict(os.environ)))
        # Longest first, so a secret that contains another is masked whole.
        self._values = sorted(values, key=len, reverse=True)

    @property
    def values(self) -> tuple[str, ...]:
        """The exact values masked (the patterns aside), longest first."""
        return tuple(self._values)

    def with_secrets(self, secrets: Iterable[str]) -> Redactor:
        merged = Redactor(include_environment=False)
        merged._values = sorted(
            {*self._values, *(s for s in secrets if s and len(s) >= _MIN_SECRET_LEN)},
            key=len,
            reverse=True,
        )
        return merged

    def redact(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(_mask_match, text)
        return text

    def redact_obj(self, obj: Any) -> Any:
        """Redacts every string inside a JSON-like structure; secret-named keys are masked whole."""
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, Mapping):
            return {
                k: (MASK if isinstance(k, str) and is_secret_name(k) and isinstance(v, str) and v
                    else self.redact_obj(v))
                for k, v in obj.items()
            }
        if isinstance(obj, list | tuple):
            return [self.redact_obj(v) for v in obj]
        return obj


def _mask_match(match: re.Match[str]) -> str:
    prefix = match.group(1) if match.groups() else ""
    return f"{prefix}{MASK}"
