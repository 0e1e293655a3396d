"""Fixtures of the attack tests: each attack runs against the real sandbox with real processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support.e2e import diff_states, tree_state


@pytest.fixture
def repo_untouched(pcc_repo: Path) -> Callable[[], None]:
    """Call it after an attack: every byte, mode and link of the user's work tree and ``.git``
    is as it was before."""
    before = tree_state(pcc_repo)

    def check() -> None:
        assert diff_states(before, tree_state(pcc_repo)) == [], "the user's repository changed"

    return check
