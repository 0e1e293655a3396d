"""Private dependencies on ``E2BBackend``: an SSH key and an npm token reach each sandbox's home,
are checked before the run, never reach an output file, and are gone before the sandbox is."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from pathlib import Path

import pytest
from e2b_server.server import E2BTestServer
from support.e2b_runs import FAST_RATE, e2b_options

import parallelcc_sdk as pcc
from parallelcc_sdk.backends.e2b.private import HOST_KEYS, read_ssh_key

NPM_TOKEN = "npm_T0kenForPrivatePackages0123456789abcdef"

# The fingerprints the hosts publish (docs.github.com "GitHub's SSH key fingerprints",
# docs.gitlab.com "SSH host keys fingerprints").
PUBLISHED = {
    ("github.com", "ssh-ed25519"): "+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
    ("github.com", "ecdsa-sha2-nistp256"): "p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM",
    ("gitlab.com", "ssh-ed25519"): "eUXGGm1YGsMAS7vkcx6JOJdOGHPem5gQp4taiCfCLB8",
    ("gitlab.com", "ecdsa-sha2-nistp256"): "HbW3g8zUjNSksFbqTiUWPWg2Bq1x8xdGUrliXFzSnUw",
    ("gitlab.com", "ssh-rsa"): "ROQFvPThGrW4RuWLoL9tq9I9zJ42fK4XywyRtbOz/EQ",
}


def make_key(path: Path, passphrase: str = "") -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "test", "-f", str(path)],
        check=True,
    )
    return path


def test_the_pinned_host_keys_are_the_published_ones() -> None:
    fingerprints = {
        (host, kind): base64.b64encode(hashlib.sha256(base64.b64decode(key)).digest())
        .decode()
        .rstrip("=")
        for host, kind, key in HOST_KEYS
    }
    assert fingerprints == PUBLISHED


def test_a_usable_key_is_read(tmp_path: Path) -> None:
    key = make_key(tmp_path / "deploy")
    assert read_ssh_key(key) == key.read_bytes()


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        ("missing", "there is no such file"),
        ("shared", "can be read or changed by other users (mode 0644); run `chmod 600"),
        ("public", "is a public key"),
        ("not-a-key", "is not a private key"),
        ("passphrase", "is protected by a passphrase"),
        ("folder", "is not a file"),
    ],
)
def test_an_unusable_key_is_refused_before_anything_starts(
    tmp_path: Path, problem: str, expected: str
) -> None:
    passphrase = "secret words" if problem == "passphrase" else ""
    key = make_key(tmp_path / "deploy", passphrase=passphrase)
    path = {
        "missing": tmp_path / "nope",
        "public": tmp_path / "deploy.pub",
        "folder": tmp_path,
    }.get(problem, key)
    key_lines = [line for line in key.read_text().splitlines() if not line.startswith("-----")]
    if problem == "shared":
        key.chmod(0o644)
    if problem == "not-a-key":
        key.write_text("just text\n")
    if problem == "public":
        path.chmod(0o600)
    backend = pcc.E2BBackend(api_key="e2b-key", ssh_key=path)
    with pytest.raises(pcc.ValidationError) as caught:
        backend.validate()
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)
    assert not [line for line in key_lines if line in str(caught.value)]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"npm_token": "two\nlines"}, "one token with no spaces or line breaks"),
        ({"npm_token": "t", "npm_registry": "ftp://r.example"}, r"must be an http\(s\) URL"),
        ({"npm_registry": "https://r.example"}, "needs npm_token"),
    ],
)
def test_bad_npm_settings_are_refused(options: dict[str, str], expected: str) -> None:
    with pytest.raises(pcc.ValidationError, match=expected):
        pcc.E2BBackend(**options)  # type: ignore[arg-type]


def test_an_unusable_key_stops_the_run_before_any_sandbox(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    key = make_key(tmp_path / "deploy")
    key.chmod(0o640)
    backend = pcc.E2BBackend(ssh_key=key, create_rate=FAST_RATE)
    with pytest.raises(pcc.ValidationError, match="chmod 600"):
        pcc.run(
            ["a"], agent=pcc.Command("true"), **e2b_options(repo, tmp_path / "o", backend=backend)
        )
    assert server.records() == [] and not (tmp_path / "o").exists()


def test_the_key_and_token_reach_the_sandbox_and_no_output_file(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    key = make_key(tmp_path / "deploy")
    backend = pcc.E2BBackend(
        ssh_key=key,
        npm_token=NPM_TOKEN,
        npm_registry="https://npm.example.com/private",
        create_rate=FAST_RATE,
    )
    # The task prints everything it was given, and leaves a note of the modes.
    agent = pcc.Command(
        "cat ~/.ssh/id_parallelcc ~/.npmrc; echo token=$(grep -o '_authToken=.*' ~/.npmrc); "
        "stat -c '%a %n' ~/.ssh/id_parallelcc ~/.ssh/config ~/.ssh/known_hosts ~/.npmrc; "
        "ssh -G github.com | grep -E '^(identityfile|stricthostkeychecking) '; "
        "grep -c '^github.com ' ~/.ssh/known_hosts"
    )
    options = e2b_options(repo, tmp_path / "out", backend=backend)
    result = pcc.run(["a", "b"], agent=agent, **options)
    assert result.success, [t.error for t in result.tasks]

    log = (Path(str(result.tasks[0].output_path)) / "execution.log").read_text()
    assert "600 /home/user/.ssh/id_parallelcc" in log and "600 /home/user/.npmrc" in log
    assert "identityfile ~/.ssh/id_parallelcc" in log
    assert "registry=https://npm.example.com/private/" in log
    assert "//npm.example.com/private/:_authToken=[REDACTED]" in log
    assert "token=_authToken=[REDACTED]" in log
    assert "[REDACTED]" in log and "\n2\n" in log

    secret_lines = [
        line for line in key.read_text().splitlines() if line and not line.startswith("-----")
    ]
    files = [p for p in Path(result.run_dir).rglob("*") if p.is_file()]
    assert len(files) > 10
    for path in files:
        text = path.read_bytes().decode(errors="replace")
        assert NPM_TOKEN not in text, path
        for line in secret_lines:
            assert line not in text, path
    # Removed before each sandbox was killed; never in a sandbox's labels.
    for task in result.tasks:
        sandbox_id = str(task.sandbox_id)
        for secret in ("/home/user/.ssh/id_parallelcc", "/home/user/.npmrc"):
            host = server.host_path(sandbox_id, secret)
            assert host is not None and not host.exists(), (sandbox_id, secret)
        metadata = str(server.record(sandbox_id).metadata)
        assert NPM_TOKEN not in metadata and secret_lines[0] not in metadata
