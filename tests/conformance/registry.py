"""The backends the conformance suite runs on. Add a backend here with one ``BACKENDS`` entry."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.e2e import bubblewrap_backend, marked_processes

import parallelcc_sdk as pcc

Leftovers = Callable[[Path, str, Mapping[str, Any]], list[str]]


@dataclass(frozen=True)
class BackendUnderTest:
    id: str
    factory: str
    """``module:function`` with ``function(work_dir: Path) -> Backend``, importable with
    ``tests/`` on the path (the cleanup check builds the backend in a child process too)."""
    leftovers: Leftovers
    """What of a sandbox (id, ``describe()``) and its run still exists: empty once cleaned up."""
    marks: tuple[pytest.MarkDecorator, ...] = ()
    fixtures: tuple[str, ...] = ()
    """pytest fixtures every test of this backend needs (a service to talk to, its settings in
    the environment, which the cleanup check's child process inherits)."""

    def make(self, work_dir: Path) -> pcc.Backend:
        module_name, _, function = self.factory.partition(":")
        module = __import__(module_name, fromlist=[function])
        backend = getattr(module, function)(work_dir)
        assert isinstance(backend, pcc.Backend)
        return backend


# -- the local backend ----------------------------------------------------------------------


def make_local_none(work_dir: Path) -> pcc.Backend:
    return pcc.LocalBackend(isolation="none", work_dir=work_dir, workspace="checkout")


def make_local_bubblewrap(work_dir: Path) -> pcc.Backend:
    bubblewrap_backend()  # fails loudly where bubblewrap is missing
    return pcc.LocalBackend(isolation="bubblewrap", work_dir=work_dir, workspace="checkout")


def make_local_overlay_none(work_dir: Path) -> pcc.Backend:
    return _overlay(pcc.LocalBackend(isolation="none", work_dir=work_dir, workspace="overlay"))


def make_local_overlay_bubblewrap(work_dir: Path) -> pcc.Backend:
    bubblewrap_backend()
    return _overlay(
        pcc.LocalBackend(isolation="bubblewrap", work_dir=work_dir, workspace="overlay")
    )


def _overlay(backend: pcc.LocalBackend) -> pcc.Backend:
    backend.validate()  # fails loudly where overlays cannot be mounted
    return backend


def local_leftovers(run_dir: Path, sandbox_id: str, info: Mapping[str, Any]) -> list[str]:
    found = [f"process {pid}" for pid in marked_processes([sandbox_id])]
    root = Path(str(info["root"]))
    if root.exists():
        found.append(f"folder {root}")
    config = json.loads((run_dir / "run.json").read_text())["config"]["backend"]
    work_dir = Path(config["work_dir"])
    found += [f"run folder {p}" for p in work_dir.glob(f"parallelcc-run.{run_dir.name}.*")]
    return found


# -- the E2B backend, against the local E2B-compatible server (tests/e2b_server) ---------------


def _e2b(prepare: str) -> pcc.Backend:
    from e2b_server.jail import bubblewrap_works

    if os.environ.get("PARALLELCC_NO_BWRAP") == "1":
        pytest.skip("PARALLELCC_NO_BWRAP=1")
    if not bubblewrap_works():
        pytest.fail("the local E2B server needs bubblewrap: apt-get install bubblewrap")
    # Reads E2B_API_KEY / E2B_API_URL / E2B_SANDBOX_URL, as set by the e2b_env fixture.
    return pcc.E2BBackend(prepare=prepare, create_rate=100)  # type: ignore[arg-type]


def make_e2b_fork(work_dir: Path) -> pcc.Backend:
    return _e2b("fork")


def make_e2b_upload(work_dir: Path) -> pcc.Backend:
    return _e2b("upload")


def e2b_leftovers(run_dir: Path, sandbox_id: str, info: Mapping[str, Any]) -> list[str]:
    """Sandboxes of the run still alive, asked through the e2b SDK (by id and by label)."""
    from e2b import Sandbox, SandboxNotFoundException, SandboxQuery

    found: list[str] = []
    for wanted in (sandbox_id, info.get("base_sandbox_id")):
        if not isinstance(wanted, str):
            continue
        try:
            Sandbox.get_info(wanted)
        except SandboxNotFoundException:
            continue
        found.append(f"sandbox {wanted}")
    pages = Sandbox.list(query=SandboxQuery(metadata={"parallelcc_run_id": run_dir.name}))
    while pages.has_next:
        found += [f"labelled sandbox {s.sandbox_id}" for s in pages.next_items()]
    return found


BACKENDS: list[BackendUnderTest] = [
    BackendUnderTest("local-none", "conformance.registry:make_local_none", local_leftovers),
    BackendUnderTest(
        "local-bubblewrap",
        "conformance.registry:make_local_bubblewrap",
        local_leftovers,
        marks=(pytest.mark.bwrap,),
    ),
    BackendUnderTest(
        "local-overlay-none",
        "conformance.registry:make_local_overlay_none",
        local_leftovers,
    ),
    BackendUnderTest(
        "local-overlay-bubblewrap",
        "conformance.registry:make_local_overlay_bubblewrap",
        local_leftovers,
        marks=(pytest.mark.bwrap,),
    ),
    *(
        BackendUnderTest(
            f"e2b-{prepare}",
            f"conformance.registry:make_e2b_{prepare}",
            e2b_leftovers,
            marks=(pytest.mark.bwrap,),
            fixtures=("e2b_env",),
        )
        for prepare in ("fork", "upload")
    ),
]
