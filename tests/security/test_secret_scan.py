"""Finding known secret values in a task's collected changes, on real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from parallelcc_sdk import secret_scan
from parallelcc_sdk.secret_scan import files_holding_secrets

SECRET = "sk-live-0123456789abcdef"


def outputs(task_dir: Path, files: dict[str, bytes], patch: bytes = b"") -> Path:
    (task_dir / "changes.patch").write_bytes(patch)
    for rel, data in files.items():
        path = task_dir / "changed-files" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return task_dir


def test_names_every_output_file_holding_a_secret_and_only_those(tmp_path: Path) -> None:
    task_dir = outputs(
        tmp_path,
        {
            "clean.txt": b"nothing here\n",
            "src/config.py": f"KEY = '{SECRET}'\n".encode(),
            "bin/blob.bin": b"\x00\xff" + SECRET.encode() + b"\x00",
            "deep/er/other.txt": b"token: other-secret-value-42\n",
        },
        patch=f"+KEY = '{SECRET}'\n".encode(),
    )
    found = files_holding_secrets(task_dir, [SECRET, "other-secret-value-42"])
    assert found == (
        "changes.patch",
        "changed-files/bin/blob.bin",
        "changed-files/deep/er/other.txt",
        "changed-files/src/config.py",
    )
    # The files are read, never changed.
    assert (task_dir / "changed-files/src/config.py").read_text() == f"KEY = '{SECRET}'\n"


def test_finds_a_secret_cut_in_two_by_a_chunk_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(secret_scan, "_CHUNK", 16)
    for offset in range(40):
        task_dir = tmp_path / f"t{offset}"
        task_dir.mkdir()
        outputs(task_dir, {"big.txt": b"x" * offset + SECRET.encode() + b"y" * 37})
        assert files_holding_secrets(task_dir, [SECRET]) == ("changed-files/big.txt",), offset


def test_links_are_not_followed_and_nothing_known_means_nothing_found(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text(SECRET)
    task_dir = tmp_path / "task"
    task_dir.mkdir()
    outputs(task_dir, {"plain.txt": b"plain\n"})
    (task_dir / "changed-files" / "link.txt").symlink_to(outside)
    assert files_holding_secrets(task_dir, [SECRET]) == ()
    assert files_holding_secrets(task_dir, []) == ()
    assert files_holding_secrets(tmp_path / "missing", [SECRET]) == ()
