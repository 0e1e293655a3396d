"""What of this machine a sandboxed task may read: the default rule, and how to change it.

Under bubblewrap a task sees the host read-only, except what is hidden (shown empty):

- the homes: ``$HOME``, the home of the user the SDK runs as, and ``/root``, so keys, tokens and
  dotfiles (``~/.ssh``, ``~/.npmrc``, ``~/.aws``) stay out of reach;
- the user's runtime folder (``$XDG_RUNTIME_DIR``: agent and D-Bus sockets) and Jupyter's runtime
  folders, whose kernel connection files hold the keys to run code outside the sandbox;
- ``/etc/shadow`` and ``/etc/gshadow``;
- the run's output folder, every other sandbox and every run snapshot (added per sandbox by the
  backend, which knows where they are).

What a task needs from a hidden home stays readable: the *tool folder* (the first folder below
the home, such as ``~/.pyenv``, ``~/.nvm``, ``~/.cargo`` or ``~/.local``) of each ``PATH`` entry,
of the Python running the SDK (``sys.prefix``, ``sys.base_prefix``) and of the agent's executable.
A hidden folder inside a readable one (Jupyter's runtime folder inside ``~/.local``) stays hidden.
``LocalBackend(hide=[...])`` hides more; ``LocalBackend(expose=[...])`` makes more readable.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

_SYSTEM_SECRETS = ("/etc/shadow", "/etc/gshadow")
# Relative to each home. Kernel connection files: with one, a task could run code in the user's
# Jupyter kernel, outside any sandbox.
_SECRETS_IN_HOMES = (".local/share/jupyter/runtime",)


def default_hidden(environ: Mapping[str, str]) -> tuple[Path, ...]:
    """What is hidden from every task by default (the output folder and sandboxes aside)."""
    homes = user_homes(environ)
    hidden = [*homes, *(home / rel for home in homes for rel in _SECRETS_IN_HOMES)]
    for var in ("XDG_RUNTIME_DIR", "JUPYTER_RUNTIME_DIR"):
        if environ.get(var):
            hidden.append(Path(environ[var]))
    hidden.append(Path(f"/run/user/{os.geteuid()}"))
    hidden += [Path(p) for p in _SYSTEM_SECRETS]
    return _existing(hidden)


def user_homes(environ: Mapping[str, str]) -> tuple[Path, ...]:
    """``$HOME``, the home of the user the SDK runs as, and ``/root``; never ``/`` itself."""
    candidates = [Path("/root")]
    if environ.get("HOME"):
        candidates.append(Path(environ["HOME"]))
    with contextlib.suppress(KeyError):  # a uid with no passwd entry, as in some containers
        candidates.append(Path(pwd.getpwuid(os.geteuid()).pw_dir))
    return tuple(p for p in _existing(candidates) if p != Path("/"))


def toolchains(path_env: str, hidden: Sequence[Path]) -> tuple[Path, ...]:
    """The tool folders, inside ``hidden`` folders, of the PATH entries and the SDK's Python."""
    return _toolchains(path_env, tuple(hidden))


@functools.cache
def _toolchains(path_env: str, hidden: tuple[Path, ...]) -> tuple[Path, ...]:
    # Cached: the same PATH and rule hold for every task of a run.
    places = [Path(entry) for entry in path_env.split(os.pathsep) if os.path.isabs(entry)]
    places += [Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)]
    return tool_folders(places, hidden)


def executable_toolchain(
    executable: str, path_env: str, hidden: Sequence[Path]
) -> tuple[Path, ...]:
    """The tool folder, inside a ``hidden`` folder, of the command's executable (if any)."""
    found = shutil.which(executable, path=path_env)
    return tool_folders([Path(found)], hidden) if found else ()


def tool_folders(places: Iterable[Path], hidden: Sequence[Path]) -> tuple[Path, ...]:
    """For each place inside a hidden folder, the first folder below that hidden one.

    A place is looked at both as written and with its links resolved (a ``~/.local/bin/claude``
    that points into ``~/.nvm``). A place that *is* a hidden folder exposes nothing: that would
    expose the whole home.
    """
    found: list[Path] = []
    for place in places:
        for path in {Path(os.path.abspath(place)), _resolved(place)}:
            for folder in hidden:
                if path != folder and path.is_relative_to(folder):
                    found.append(folder / path.relative_to(folder).parts[0])
    # Not resolved: a tool folder that is a link must still be found at its own path.
    return tuple(dict.fromkeys(p for p in found if os.path.exists(p)))


def checked_paths(option: str, paths: object) -> tuple[Path, ...]:
    """``LocalBackend(hide=...)`` / ``expose=`` as absolute, resolved paths, or a one-sentence
    :class:`~parallelcc_sdk.errors.ValidationError`."""
    from ..errors import ValidationError

    if isinstance(paths, str | bytes | os.PathLike) or not isinstance(paths, Iterable):
        raise ValidationError(
            f"LocalBackend({option}=...) must be a list of paths, e.g. {option}=['/opt/data']."
        )
    checked: list[Path] = []
    for path in paths:
        if not isinstance(path, str | os.PathLike) or not str(path).strip():
            raise ValidationError(
                f"LocalBackend({option}=...) holds {path!r}, which is not a path; "
                f"pass folder or file paths such as {option}=['/opt/data']."
            )
        checked.append(_resolved(Path(path).expanduser()))
    return tuple(dict.fromkeys(checked))


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a link loop: keep the path as written
        return Path(os.path.abspath(path))


def _existing(paths: Iterable[Path]) -> tuple[Path, ...]:
    out: list[Path] = []
    for path in paths:
        resolved = _resolved(path)
        # os.path: a path this user may not even look at is simply not there.
        if os.path.exists(resolved) and resolved not in out:
            out.append(resolved)
    return tuple(out)
