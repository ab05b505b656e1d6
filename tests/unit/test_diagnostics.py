"""The stall report (minicc.diagnostics): off unless asked, and it sees a blocked loop."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time

import pytest

from minicc.diagnostics import ENV, StallMonitor

_STALLED = re.compile(r"over 50 ms: [1-9]")


def test_off_unless_the_environment_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert StallMonitor.from_env() is None
    monkeypatch.setenv(ENV, "0")
    assert StallMonitor.from_env() is None
    monkeypatch.setenv(ENV, "5")
    monitor = StallMonitor.from_env()
    assert monitor is not None and monitor.report_s == 5.0


def test_a_bad_value_is_named_and_ignored(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(ENV, "soon")
    with caplog.at_level(logging.WARNING, logger="minicc.diagnostics"):
        assert StallMonitor.from_env() is None
    assert ENV in caplog.text and "'soon'" in caplog.text


async def test_a_blocked_loop_and_a_collection_are_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor = StallMonitor(report_s=0.05, interval=0.005)
    with caplog.at_level(logging.WARNING, logger="minicc.diagnostics"):
        monitor.start()
        try:
            await asyncio.sleep(0.02)
            time.sleep(0.08)  # the loop is blocked: what the monitor is for
            gc.collect()
            deadline = time.monotonic() + 2.0
            while not _STALLED.search(caplog.text) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        finally:
            monitor.stop()
    assert _STALLED.search(caplog.text)
    assert "gen2:" in caplog.text
