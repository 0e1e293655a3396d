"""JupyterLab in headless Debian chromium, driven by Playwright: "Run All" on 01-quickstart.

Run All queues every cell at once (unlike nbval/nbclient, which send one cell at a time), which is
the case where an archived-nest_asyncio setup hangs on the next queued ``await`` cell. The test
waits for the widget to show every task completed and for every cell to finish, then checks the
saved notebook keeps a static HTML snapshot of the outcome and of where the run folder is.
Screenshots go to ci-artifacts/, and to docs/img/ when PARALLELCC_UPDATE_DOCS_IMAGES=1.

Needs ``chromium`` (Debian package) and ``jupyterlab`` + ``playwright`` in the venv:
``.ci/install-notebook.sh VENV``. Playwright's own browser download is not used.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.jupyter import write_venv_kernelspec

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "01-quickstart.ipynb"
ARTIFACTS = ROOT / "ci-artifacts"
DOCS_IMG = ROOT / "docs" / "img"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}"""
# Every code cell has run: none is queued or running ("[*]") and none was never run ("[ ]").
ALL_CELLS_RAN = """() => {
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
  return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http_ok(url: str, lab: subprocess.Popen[bytes], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if lab.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {lab.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"JupyterLab did not answer {url} within {deadline_s}s")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A JupyterLab server on 127.0.0.1 serving a copy of the notebook (so autosave never touches
    the repository), with its own config, runtime and settings folders."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: run .ci/install-notebook.sh <venv> (apt-get chromium)")
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    cfg = tmp_path / "cfg"
    (cfg / "labconfig").mkdir(parents=True)
    # No "news?" toast over the screenshots.
    (cfg / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    # The kernel runs this interpreter (the venv), whatever python3 kernelspec the machine has.
    write_venv_kernelspec(tmp_path / "share", "Python 3 (ipykernel)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARALLELCC_")}
    env.update(
        JUPYTER_CONFIG_DIR=str(cfg),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
        JUPYTER_PATH=str(tmp_path / "share"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws"),
    )
    port, token = _free_port(), "pcc-browser-test"
    log = (tmp_path / "lab.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.extension_manager=readonly",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        start_new_session=True,  # so the whole process group (kernels too) can be stopped
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_http_ok(f"http://127.0.0.1:{port}/api/status?token={token}", proc, 90)
        yield f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?token={token}&reset", root
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


def _refresh_docs_image(name: str) -> None:
    # The docs' screenshots change only on request, so a test run leaves the work tree clean.
    if os.environ.get("PARALLELCC_UPDATE_DOCS_IMAGES") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copy(ARTIFACTS / name, DOCS_IMG / name)


def test_run_all_shows_every_task_completed(lab: tuple[str, Path]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, root = lab
    ARTIFACTS.mkdir(exist_ok=True)
    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)
            page.goto(url)
            page.wait_for_function(KERNEL_IDLE, timeout=90_000)
            # Fire and forget: awaiting the command's promise hangs if a dialog appears.
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

            live = page.locator(".pcc-progress").first
            expect(live).to_be_visible()
            expect(live.locator(".pcc-run")).to_contain_text("running")
            live.scroll_into_view_if_needed()
            live.screenshot(path=str(ARTIFACTS / "notebook-widget-live.png"))
            _refresh_docs_image("notebook-widget-live.png")

            # The first run's display: the live widget, then its static snapshot in its place.
            first = page.locator(".pcc-run").first
            expect(first.locator(".pcc-outcome")).to_have_text("finished", timeout=90_000)
            expect(first).to_contain_text("6 completed")
            page.wait_for_function(ALL_CELLS_RAN, timeout=120_000)
            page.wait_for_function(KERNEL_IDLE, timeout=60_000)
            errors = page.locator(
                '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
            )
            tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
            assert not tracebacks, tracebacks
            first.scroll_into_view_if_needed()
            first.screenshot(path=str(ARTIFACTS / "notebook-widget-final.png"))
            _refresh_docs_image("notebook-widget-final.png")
            page.screenshot(path=str(ARTIFACTS / "notebook-run-all.png"), full_page=True)

            page.evaluate("() => { window.jupyterapp.commands.execute('docmanager:save'); }")
            page.wait_for_function(
                "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000
            )
        finally:
            browser.close()
    print(f"Run All in JupyterLab took {time.monotonic() - started:.1f} s")

    saved = json.loads((root / NOTEBOOK.name).read_text())
    blocking = next(
        c for c in saved["cells"] if c["cell_type"] == "code" and "pcc.run(" in "".join(c["source"])
    )
    [output] = blocking["outputs"]
    html = "".join(output["data"].get("text/html", ""))
    text = "".join(output["data"].get("text/plain", ""))
    # A run that ended in the cell that displayed it leaves a static snapshot in the saved
    # notebook, not a widget (whose state is not saved with the notebook), saying how the run
    # ended and where its folder is.
    assert '"pcc-outcome">finished</b>' in html and "finished: 2 completed" in text, output
    assert "run folder" in html and "/results/" in html, output
    assert "run folder: " in text and "parallelcc-quickstart-" in text, output
    assert "application/vnd.jupyter.widget-view+json" not in output["data"]
    # So does the run submitted in one cell and awaited in the next.
    submitted = next(
        c
        for c in saved["cells"]
        if c["cell_type"] == "code" and "pcc.submit(" in "".join(c["source"])
    )
    [output] = submitted["outputs"]
    text = "".join(output["data"].get("text/plain", ""))
    assert "finished: 6 completed" in text and "run folder: " in text, output
    assert "application/vnd.jupyter.widget-view+json" not in output["data"]
