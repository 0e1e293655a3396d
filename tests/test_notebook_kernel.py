"""The SDK in a real Jupyter kernel (ipykernel over jupyter_client, no browser): every way of
waiting for a run works from a cell, the widget streams while a cell blocks (its Cancel button
disabled, since the kernel cannot take a click), the button cancels a run a cell awaits, and an
interrupt cancels the run and leaves no process behind."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.jupyter import execute, write_venv_kernelspec

jupyter_client = pytest.importorskip("jupyter_client")
from jupyter_client.blocking.client import BlockingKernelClient  # noqa: E402
from jupyter_client.manager import KernelManager, start_new_kernel  # noqa: E402

pytestmark = pytest.mark.kernel


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARALLELCC_")}
    km, kc = start_new_kernel(
        kernel_name="python3", cwd=str(tmp_path), env=env, extra_arguments=[], startup_timeout=60
    )
    # Use this interpreter (the venv), whatever the machine's python3 kernelspec says.
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.fixture(autouse=True)
def _venv_kernelspec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_venv_kernelspec(tmp_path, "venv")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))


def setup_code(repo: Path, tmp_path: Path, command: str) -> str:
    return f"""
        import asyncio, os
        import parallelcc_sdk as pcc
        kw = dict(repo={str(repo)!r}, output_dir={str(tmp_path / "out")!r},
                  agent=pcc.Command({command!r}), backend=pcc.LocalBackend(isolation="none"))
        """


def setup_sleepers(kc: Any, repo: Path, tmp_path: Path) -> str:
    """Sets up tasks that sleep a minute; returns the command line, which pgrep can find: its
    duration is unique to this test process."""
    marker = f"sleep 60.{os.getpid()}"
    cell = execute(kc, setup_code(repo, tmp_path, marker))
    assert cell.error is None, cell.error
    return marker


def test_every_way_of_waiting_works_from_cells(
    kernel: Any, notes_repo: Path, tmp_path: Path
) -> None:
    _km, kc = kernel
    cell = execute(
        kc, setup_code(notes_repo, tmp_path, "echo $PARALLELCC_TASK_ID > done.txt; sleep 0.3")
    )
    assert cell.error is None, cell.error

    # pcc.run blocks the cell; the widget keeps streaming from the background loop meanwhile.
    cell = execute(
        kc,
        'result = pcc.run(["a", "b", "c", "d"], max_concurrent=2, **kw)\n'
        'print("run", result.success)',
    )
    assert cell.error is None, cell.error
    assert "run True" in cell.stdout
    kinds = [o["type"] for o in cell.outputs]
    assert kinds[0] == "display_data"
    assert "application/vnd.jupyter.widget-view+json" in cell.outputs[0]["data"]
    # At the end the live widget's output is replaced by a static snapshot for the saved notebook,
    # which says how the run ended and where its folder is.
    final = [o for o in cell.outputs if o["type"] == "update_display_data"]
    snapshot = final[-1]["data"] if final else {}
    assert '"pcc-outcome">finished</b>' in snapshot.get("text/html", ""), snapshot
    assert "4 completed" in snapshot["text/html"]
    assert str(tmp_path / "out") in snapshot["text/html"]
    assert f"run folder: {tmp_path / 'out'}" in snapshot["text/plain"]
    assert "application/vnd.jupyter.widget-view+json" not in snapshot
    assert cell.comm_updates, "no widget update streamed while the cell was blocked"
    # The blocked kernel cannot take a click: the Cancel button said so instead of staying live.
    descriptions = [s["description"] for s in cell.comm_states if "description" in s]
    assert "Cancel: interrupt the kernel" in descriptions, descriptions

    # submit in one cell, await in the next (the kernel's own loop runs the tasks).
    cell = execute(kc, 'handle = pcc.submit(["a", "b"], **kw)')
    assert cell.error is None, cell.error
    cell = execute(kc, 'r = await handle\nprint("await", r.success, handle.status)')
    assert "await True finished" in cell.stdout, (cell.stdout, cell.error)

    # submit, then a blocking result() in a later cell: the nested-loop case.
    cell = execute(kc, 'handle = pcc.submit(["a", "b"], progress="off", **kw)')
    cell = execute(kc, 'print("result", handle.result().success)')
    assert "result True" in cell.stdout, (cell.stdout, cell.error)

    cell = execute(
        kc, 'print("run_async", (await pcc.run_async(["a"], progress="off", **kw)).success)'
    )
    assert "run_async True" in cell.stdout, (cell.stdout, cell.error)

    # The handle as the last expression of a cell shows the outcome as HTML once finished.
    cell = execute(kc, "handle")
    [out] = cell.outputs
    assert '"pcc-outcome">finished</b>' in out["data"]["text/html"]
    assert "2 completed" in out["data"]["text/html"]


def test_interrupt_during_run_cancels_and_leaves_no_process(
    kernel: Any, notes_repo: Path, tmp_path: Path
) -> None:
    km, kc = kernel
    marker = setup_sleepers(kc, notes_repo, tmp_path)
    started = time.monotonic()
    cell = execute(
        kc,
        'result = pcc.run(["a", "b", "c"], progress="off", **kw)',
        after=2.0,
        action=km.interrupt_kernel,
        timeout=90,
    )
    assert cell.error is not None and cell.error["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - started < 60
    leftover = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "sandbox processes survived the interrupt"
    # The run's folder records the tasks as cancelled.
    cell = execute(
        kc,
        "import glob, json\n"
        f'runs = sorted(glob.glob({str(tmp_path / "out")!r} + "/*/run.json"))\n'
        "print(open(runs[-1]).read())",
    )
    assert "cancelled" in cell.stdout


def test_cancel_button_works_while_a_cell_awaits_the_handle(
    kernel: Any, notes_repo: Path, tmp_path: Path
) -> None:
    _km, kc = kernel
    marker = setup_sleepers(kc, notes_repo, tmp_path)
    cell = execute(
        kc,
        'handle = pcc.submit(["a", "b"], **kw)\n'
        "from parallelcc_sdk.views import widget_view\n"
        "print(widget_view(handle).cancel_button.comm.comm_id)",
    )
    assert cell.error is None, cell.error
    button = cell.stdout.strip()
    click = {"comm_id": button, "data": {"method": "custom", "content": {"event": "click"}}}
    cell = execute(
        kc,
        'r = await handle\nprint("ended", handle.status, r.counts["cancelled"])',
        after=1.5,  # the cell is awaiting by then
        action=lambda: kc.shell_channel.send(kc.session.msg("comm_msg", click)),
        timeout=60,
    )
    assert "ended cancelled 2" in cell.stdout, (cell.stdout, cell.error)
    assert cell.idle_at is not None
    assert cell.idle_at - cell.started < 30  # the click, not the 60 s sleep, ended the run
    leftover = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""
