"""A task controls its sandbox, so the change archive that comes back is untrusted: one whose
paths would leave the task's folder is refused, through the whole E2B path.

The task below swaps the sandbox's ``git`` for its own (a login-shell profile puts it first on
PATH), so the collection command hands back an archive the task made.
"""

from __future__ import annotations

import base64
import io
import tarfile
import uuid
from pathlib import Path

import pytest
from e2b_server.server import E2BTestServer
from support.e2b_runs import e2b_options

import parallelcc_sdk as pcc

pytestmark = [pytest.mark.bwrap, pytest.mark.timeout(60)]

PLANT_GIT = pcc.Command(
    'mkdir -p "$HOME/evil/bin" && base64 -d > "$HOME/evil/changes.tar" && '
    "printf '#!/bin/sh\\nfor a in \"$@\"; do [ \"$a\" = archive ] && exec cat "
    "\"$HOME/evil/changes.tar\"; done\\nexec /usr/bin/git \"$@\"\\n' > \"$HOME/evil/bin/git\" && "
    'chmod +x "$HOME/evil/bin/git" && '
    "printf 'export PATH=\"$HOME/evil/bin:$PATH\"\\n' > \"$HOME/.bash_profile\" && "
    "printf 'x\\n' >> a.txt"
)


def evil_archive(members: list[tarfile.TarInfo]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("patch", "numstat", "name-status"):
            tar.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
        for member in members:
            data = b"pwned\n" if member.isreg() else b""
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


@pytest.mark.parametrize("kind", ["dot-dot", "absolute", "outward-symlink"])
def test_a_change_archive_that_leaves_its_folder_is_refused(
    server: E2BTestServer, repo: Path, tmp_path: Path, kind: str
) -> None:
    outside = tmp_path / f"outside-{uuid.uuid4().hex}"
    members = {
        "dot-dot": [tarfile.TarInfo("files/../escape")],
        "absolute": [tarfile.TarInfo(f"files/{outside}/abs")],
        "outward-symlink": [symlink("files/link", str(outside)), tarfile.TarInfo("files/link/in")],
    }[kind]
    outside.mkdir()
    prompt = base64.b64encode(evil_archive(members)).decode()
    result = pcc.run([prompt], agent=PLANT_GIT, **e2b_options(repo, tmp_path / "out"))

    (task,) = result.tasks
    assert task.status == "failed"
    assert str(task.error).startswith("change collection failed: the change archive")
    assert "leaves its folder" in str(task.error) or "under a link" in str(task.error)
    task_dir = Path(str(task.output_path))
    assert not (task_dir / "escape").exists()
    assert list(outside.iterdir()) == []
    assert not (task_dir / "changed-files").exists() and not (task_dir / "changes.patch").exists()
    assert server.alive() == []
