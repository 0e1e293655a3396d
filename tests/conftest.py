"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.scripted_anthropic import ScriptedAnthropic


@pytest.fixture
def scripted_api() -> Iterator[ScriptedAnthropic]:
    """A scripted Anthropic Messages API on 127.0.0.1 for the real ``claude`` CLI to talk to."""
    with ScriptedAnthropic() as api:
        yield api
