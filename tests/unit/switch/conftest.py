"""Fixtures: a real switch per test (see ``harness.py``), stopped when the test ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.unit.switch.harness import FakeEngine, Harness, MakeSwitch, start_switch


@pytest.fixture
async def make_switch() -> AsyncIterator[MakeSwitch]:
    """Factory: ``await make_switch(ring_timeout=0.5)`` starts a switch with those settings."""
    made: list[Harness] = []

    async def factory(**overrides: Any) -> Harness:
        harness = await start_switch(**overrides)
        made.append(harness)
        return harness

    yield factory
    for harness in made:
        await harness.close()


@pytest.fixture
async def sw(make_switch: MakeSwitch) -> Harness:
    """A switch with the default settings (ring timeout 5 s)."""
    return await make_switch()


@pytest.fixture
def engine() -> FakeEngine:
    """The engine's part, recording what the switch tells it (``default_route`` routing)."""
    return FakeEngine()


@pytest.fixture
async def asw(make_switch: MakeSwitch, engine: FakeEngine) -> Harness:
    """A switch with ``engine`` as its observer (ring timeout 5 s)."""
    return await make_switch(observer=engine)
