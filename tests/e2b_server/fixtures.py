"""pytest fixtures: a fresh local E2B server per test.

Registered from ``tests/conftest.py`` (``pytest_plugins``). ``e2b_server`` yields the running
:class:`~.server.E2BTestServer`: ``.url``, ``.api_key``, ``.env`` (variables for the SDK),
``.sdk_options`` (the same as keyword arguments), ``.log`` (request log), ``.faults``,
``.alive()``, ``.records()``, ``.max_alive()``, ``.kill_sandbox(id)``, ``.host_path(id, path)``.
``e2b_env`` is the same server with its variables set in the environment for the test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .server import E2BTestServer

_FOREIGN_E2B_VARIABLES = ("E2B_DEBUG", "E2B_DOMAIN", "E2B_ACCESS_TOKEN", "E2B_HTTP_VERSION")


@pytest.fixture
def e2b_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2BTestServer]:
    from .server import E2BTestServer

    root = tmp_path_factory.mktemp("e2b-sandboxes")
    # Ended sandboxes keep their folders until the test ends, for assertions on what they left.
    with E2BTestServer(root, retain_killed=True) as server:
        yield server


@pytest.fixture
def e2b_env(e2b_server: E2BTestServer, monkeypatch: pytest.MonkeyPatch) -> E2BTestServer:
    """``e2b_server`` with ``E2B_API_KEY`` / ``E2B_API_URL`` / ``E2B_SANDBOX_URL`` set."""
    for name in _FOREIGN_E2B_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in e2b_server.env.items():
        monkeypatch.setenv(name, value)
    return e2b_server


def require_bubblewrap(server: E2BTestServer) -> None:
    """Fails a test that needs the server's bubblewrap isolation where it is missing.

    A failure, not a skip, so a machine without bubblewrap cannot pass silently; set
    PARALLELCC_NO_BWRAP=1 to skip such tests on purpose.
    """
    if os.environ.get("PARALLELCC_NO_BWRAP") == "1":
        pytest.skip("PARALLELCC_NO_BWRAP=1")
    if server.isolation != "bubblewrap":
        pytest.fail(
            "bubblewrap (bwrap) cannot create sandboxes here: install it "
            "(apt-get install bubblewrap) or set PARALLELCC_NO_BWRAP=1 to skip these tests."
        )
