"""``E2BBackend``'s options: checked when made, what reaches E2B (template, labels, envs), what is
never sent (secret files), and what is never written (keys)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from e2b_server.server import E2BTestServer
from support.e2b_runs import FAST_RATE, e2b_options, task_sandbox
from support.gitrepo import make_repo

import parallelcc_sdk as pcc
from parallelcc_sdk.api import resolve_backend
from parallelcc_sdk.backends.e2b.archive import DEFAULT_SECRET_PATTERNS, omitted_paths
from parallelcc_sdk.backends.registry import backend_class


def test_importing_the_sdk_does_not_import_e2b() -> None:
    code = (
        "import sys, parallelcc_sdk as pcc\n"
        "backend = pcc.E2BBackend(api_key='k')\n"
        "assert 'e2b' not in sys.modules, 'e2b was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_backend_e2b_is_the_e2b_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("E2B_TEMPLATE", raising=False)
    backend = resolve_backend("e2b")
    assert isinstance(backend, pcc.E2BBackend)
    assert backend.template == "anthropic-claude-code" and backend.prepare == "auto"
    assert backend_class("e2b") is pcc.E2BBackend


def test_the_template_comes_from_the_argument_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("E2B_TEMPLATE", " my-template ")
    assert pcc.E2BBackend().template == "my-template"
    assert pcc.E2BBackend(template="explicit").template == "explicit"


def test_a_missing_key_is_refused_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pcc_repo: Path
) -> None:
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    with pytest.raises(pcc.CredentialsError, match="set E2B_API_KEY"):
        pcc.submit(
            ["a"], repo=pcc_repo, backend="e2b", agent=pcc.Command("true"),
            output_dir=tmp_path / "out", progress="off",
        )  # fmt: skip
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"prepare": "clone"}, "use 'auto', 'fork' or 'upload'"),
        ({"create_rate": 0}, "create_rate=0) must be a positive number"),
        ({"create_rate": float("nan")}, "must be a positive number"),
        ({"sandbox_timeout": 0.5}, "at least 1 second"),
        ({"sandbox_timeout": "60"}, "must be a number of seconds"),
        ({"template": " "}, "must be a template name"),
        ({"metadata": {"parallelcc_run_id": "x"}}, "labels starting with 'parallelcc_'"),
        ({"envs": {"A": 1}}, "must map names to strings"),
        ({"exclude_secrets": ".env"}, "must be True, False or a list of patterns"),
        ({"rates": {"usd_per_vcpu_second": 1}}, "must be an E2BRates"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], expected: str) -> None:
    with pytest.raises(pcc.ValidationError) as caught:
        pcc.E2BBackend(**options)  # type: ignore[arg-type]
    assert expected in str(caught.value)


def test_bad_rates_are_refused() -> None:
    with pytest.raises(pcc.ValidationError, match="finite amount"):
        pcc.E2BRates(usd_per_vcpu_second=-1)
    assert pcc.E2BRates(vcpus=2, memory_gib=0.5).per_second(8, 8) == pytest.approx(0.00003025)


def test_secrets_are_known_and_never_described() -> None:
    backend = pcc.E2BBackend(
        api_key="e2b_0123456789abcdef0123",
        npm_token="npm_secret_token_value",
        envs={"SERVICE_TOKEN": "a-secret-value-1234", "MODE": "fast"},
    )
    assert {"e2b_0123456789abcdef0123", "npm_secret_token_value", "a-secret-value-1234"} <= set(
        backend.secrets()
    )
    described = json.dumps(backend.describe())
    for secret in backend.secrets():
        assert secret not in described
    assert "e2b_0123456789abcdef0123" not in repr(backend)


def test_secret_file_patterns() -> None:
    paths = [
        ".env", "app/.env", ".env.example", ".env.production.local", "certs/server.pem",
        "deploy/id_rsa", "deploy/id_rsa.pub", "home/.ssh/id_ed25519", "gcp/service-account.json",
        "service-account-prod.json", ".aws/credentials", "x/.gnupg/private-keys-v1.d/k.key",
        "src/env.py", "README.md", "keys.txt",
    ]  # fmt: skip
    assert omitted_paths(paths, DEFAULT_SECRET_PATTERNS) == [
        ".env", "app/.env", ".env.production.local", "certs/server.pem", "deploy/id_rsa",
        "home/.ssh/id_ed25519", "gcp/service-account.json", "service-account-prod.json",
        ".aws/credentials", "x/.gnupg/private-keys-v1.d/k.key",
    ]  # fmt: skip


SECRET_FILES = {".env": "API_KEY=x\n", "config/server.pem": "pem\n", "deploy/id_rsa": "key\n"}
LOOK = pcc.Command("ls -A . config deploy 2>&1 | tr '\\n' ' '; echo; printf 'x\\n' >> a.txt")


@pytest.mark.bwrap
def test_secret_files_stay_home_and_do_not_show_as_deleted(
    server: E2BTestServer, tmp_path: Path, pcc_git_env: Path
) -> None:
    files = {"a.txt": "a\n", "config/app.toml": "x=1\n", **SECRET_FILES}
    repo = make_repo(tmp_path / "repo", files)
    result = pcc.run(["look"], agent=LOOK, **e2b_options(repo, tmp_path / "out"))
    (task,) = result.tasks
    assert task.status == "completed", task.error
    seen = str(task.last_output)
    for name in (".env", "server.pem", "id_rsa"):
        assert name not in seen, seen
    assert "app.toml" in seen
    assert (task.changed_paths, task.deleted_paths, task.files_changed) == (("a.txt",), (), 1)
    patch = (Path(str(task.output_path)) / "changes.patch").read_text()
    assert patch.startswith("diff --git a/a.txt b/a.txt") and patch.count("diff --git") == 1
    shared = json.loads((Path(result.run_dir) / "run.json").read_text())["backend_run"]
    assert shared["omitted_secret_files"] == 3


@pytest.mark.bwrap
def test_secret_files_can_be_sent_on_purpose(
    server: E2BTestServer, tmp_path: Path, pcc_git_env: Path
) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n", **SECRET_FILES})
    backend = pcc.E2BBackend(exclude_secrets=["*.pem"], create_rate=FAST_RATE)
    result = pcc.run(["look"], agent=LOOK, **e2b_options(repo, tmp_path / "out", backend=backend))
    seen = str(result.tasks[0].last_output)
    assert ".env" in seen and "id_rsa" in seen and "server.pem" not in seen


@pytest.mark.bwrap
def test_sandboxes_carry_the_template_labels_and_envs(
    server: E2BTestServer, repo: Path, tmp_path: Path
) -> None:
    backend = pcc.E2BBackend(
        template="my-template",
        metadata={"team": "research"},
        envs={"GREETING": "hello"},
        prepare="upload",
        create_rate=FAST_RATE,
    )
    agent = pcc.Command('echo "$GREETING"')
    result = pcc.run(["a", "b"], agent=agent, **e2b_options(repo, tmp_path / "o", backend=backend))
    assert [t.last_output for t in result.tasks] == ["hello", "hello"]
    for task in result.tasks:
        record = server.record(str(task.sandbox_id))
        assert record.template == "my-template"
        owner = record.metadata.pop("parallelcc_owner")
        assert owner.startswith(f"{socket.gethostname()}:")
        assert record.metadata == {
            "team": "research",
            "parallelcc_run_id": result.run_id,
            "parallelcc_task_id": task.task_id,
            "parallelcc_attempt": "1",
        }
    assert all(task_sandbox(r) for r in server.records())


@pytest.mark.bwrap
def test_an_unknown_template_stops_the_run_at_its_start(
    tmp_path: Path, pcc_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with E2BTestServer(tmp_path / "sandboxes", templates={"base"}) as only_base:
        for name, value in only_base.env.items():
            monkeypatch.setenv(name, value)
        backend = pcc.E2BBackend(template="no-such-template", create_rate=FAST_RATE)
        with pytest.raises(pcc.ValidationError, match="E2B has no template 'no-such-template'"):
            pcc.run(["a"], agent=LOOK, **e2b_options(pcc_repo, tmp_path / "out", backend=backend))
        assert only_base.alive() == []


def test_a_sandbox_lives_for_its_task_and_no_longer_than_every_plan_allows() -> None:
    backend = pcc.E2BBackend()
    assert backend.sandbox_lifetime(120) == 420
    assert backend.sandbox_lifetime(None) == 600
    assert backend.sandbox_lifetime(10 * 3600) == 3600  # renewals carry it further where allowed
    assert pcc.E2BBackend(sandbox_timeout=90).sandbox_lifetime(10 * 3600) == 90
