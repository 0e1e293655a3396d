"""The environment a task's command runs with: an allow-list of this machine's, never all of it.

A task gets from the host only what locates tools and shapes text (``PATH``, the locale, the
terminal, the time zone, who the user is and their shell), plus, by name, what the user lets
through (``LocalBackend(env_passthrough=[...])``). Everything else it gets is given explicitly:
by the agent (its own settings and credentials, in ``Invocation.env``, which also holds the
task's ``Task.env``) and by the sandbox (``HOME``, ``TMPDIR``). So ``AWS_SECRET_ACCESS_KEY`` or
``ANTHROPIC_API_KEY`` set in a notebook never reaches a task unless its agent needs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

HOST_VARIABLES: tuple[str, ...] = (
    "PATH", "LANG", "LANGUAGE", "TERM", "TZ", "USER", "LOGNAME", "SHELL",
)
HOST_PREFIXES: tuple[str, ...] = ("LC_",)
_WILDCARD = "*"


def task_environment(
    host: Mapping[str, str],
    *,
    passthrough: Iterable[str] = (),
    explicit: Mapping[str, str],
    fixed: Mapping[str, str],
) -> dict[str, str]:
    """The command's environment: allowed ``host`` variables, then ``explicit``, then ``fixed``.

    ``passthrough`` names more host variables to let through; a name ending in ``*`` lets
    through every variable that starts with what comes before it (``"PIP_*"``).
    """
    names, prefixes = set(HOST_VARIABLES), list(HOST_PREFIXES)
    for name in passthrough:
        if name.endswith(_WILDCARD):
            prefixes.append(name[: -len(_WILDCARD)])
        else:
            names.add(name)
    env = {k: v for k, v in host.items() if k in names or k.startswith(tuple(prefixes))}
    env.setdefault("PATH", os.defpath)
    return {**env, **explicit, **fixed}


def checked_passthrough(names: object) -> tuple[str, ...]:
    """``env_passthrough`` as a tuple of names, or a one-sentence ``ValidationError``."""
    from .errors import ValidationError

    example = "env_passthrough=['HTTPS_PROXY', 'PIP_*']"
    if isinstance(names, str | bytes) or not isinstance(names, Iterable):
        raise ValidationError(
            f"LocalBackend(env_passthrough=...) must be a list of variable names, e.g. {example}."
        )
    checked: list[str] = []
    for name in names:
        stem = name[: -len(_WILDCARD)] if isinstance(name, str) and name.endswith("*") else name
        if not isinstance(stem, str) or not stem or "=" in stem or "\0" in stem or "*" in stem:
            raise ValidationError(
                f"LocalBackend(env_passthrough=...) holds {name!r}, which is not a variable "
                f"name (or a prefix ending in '*'); pass for example {example}."
            )
        checked.append(str(name))
    return tuple(dict.fromkeys(checked))
