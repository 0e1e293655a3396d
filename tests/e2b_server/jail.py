"""How a sandbox's command is started: under bubblewrap in the sandbox's own view of the machine.

The view is built on an empty root: every top-level host folder is mounted read-only, except
``/home``, ``/root``, ``/tmp`` and ``/workspace``, which come from the sandbox's folder (see
``layout.py``). A user namespace maps the sandbox's ``user`` (uid 1000) or ``root`` (uid 0) onto
the server's own uid, so a command can write its sandbox's folders and nothing else, and a private
PID namespace means killing the command kills everything it started.

Without bubblewrap (``isolation="none"``) the command runs directly on the host with its
working directory and HOME mapped to the sandbox's folders; absolute sandbox paths inside a
command string then mean host paths. Only use that where bubblewrap cannot run.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from .layout import GENERATED_FILES, KERNEL_TOP_LEVEL, OWN_TOP_LEVEL, WRITABLE_ROOTS, Layout, User

BWRAP = "bwrap"

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@functools.cache
def bubblewrap_works() -> bool:
    """True when ``bwrap`` is installed and can build a sandbox view with a user namespace here."""
    if shutil.which(BWRAP) is None:
        return False
    with tempfile.TemporaryDirectory(prefix="e2b-server-probe-") as tmp:
        layout = Layout(Path(tmp))
        layout.create()
        argv = jail_argv(layout, User("user", 1000, "/home/user"), "/home/user", ["/bin/true"])
        try:
            done = subprocess.run(argv, capture_output=True, timeout=15, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0


def jail_argv(
    layout: Layout, user: User, cwd: str, command: Sequence[str], hostname: str = "e2b"
) -> list[str]:
    """The bubblewrap command line that runs ``command`` as ``user`` in ``cwd`` (sandbox paths)."""
    argv = [BWRAP]
    for entry in sorted(os.scandir("/"), key=lambda e: e.name):
        if entry.name in OWN_TOP_LEVEL or entry.name in KERNEL_TOP_LEVEL:
            continue
        if entry.is_symlink():
            argv += ["--symlink", os.readlink(entry.path), entry.path]
        else:
            argv += ["--ro-bind-try", entry.path, entry.path]
    argv += ["--ro-bind-try", "/sys", "/sys", "--proc", "/proc", "--dev", "/dev"]
    for root in WRITABLE_ROOTS:
        argv += ["--bind", str(layout.host_of(root)), root]
    for path in GENERATED_FILES:
        argv += ["--ro-bind", str(layout.etc / Path(path).name), path]
    for hidden in layout.hidden:
        # Under /home, /tmp, ... the host's folder is not in the view anyway.
        if hidden.split("/")[1] not in OWN_TOP_LEVEL:
            argv += ["--tmpfs", hidden]
    argv += [
        "--unshare-user",
        "--uid",
        str(user.uid),
        "--gid",
        str(user.uid),
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--hostname",
        hostname,
        "--die-with-parent",
        "--chdir",
        cwd,
        "--",
        *command,
    ]
    return argv


def command_env(
    user: User, sandbox_id: str, *envs: Mapping[str, str], home: str | None = None
) -> dict[str, str]:
    """The environment envd gives a command: its user's basics, then the sandbox's and the
    command's variables. Nothing of the server's own environment leaks in."""
    env = {
        "PATH": DEFAULT_PATH,
        "HOME": home or user.home,
        "USER": user.name,
        "LOGNAME": user.name,
        "SHELL": "/bin/bash",
        "LANG": "C.UTF-8",
        "E2B_SANDBOX": "true",
        "E2B_SANDBOX_ID": sandbox_id,
    }
    for extra in envs:
        env.update(extra)
    return env
