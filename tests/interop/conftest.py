"""Fixtures for tests that drive real SIP clients: a running minicc, sipp runs, baresip phones.

Every process a fixture starts is stopped by PID when the test ends. When a test fails, the
tail of each log those fixtures registered (server log, sipp traces, baresip output) is added to
the failure report, so a red CI run says what the server and the clients saw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from tests.conftest import require_tool
from tests.interop.audio import make_tone_wav
from tests.interop.baresip import Account, Baresip
from tests.interop.ports import release_all
from tests.interop.server import MiniccServer
from tests.interop.sipp import Sipp

_LOG_TAIL = 6000
_logs_key = pytest.StashKey[list[tuple[str, Path]]]()


def attach_log(request: pytest.FixtureRequest, title: str, path: Path) -> None:
    """Show the tail of ``path`` under ``title`` if the requesting test fails."""
    node = request.node
    node.stash.setdefault(_logs_key, []).append((title, path))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and report.when in ("setup", "call"):
        for title, path in item.stash.get(_logs_key, []):
            try:
                text = path.read_text(errors="replace")
            except FileNotFoundError:
                continue
            if text.strip():
                report.sections.append((f"{title} ({path.name}, tail)", text[-_LOG_TAIL:]))
    return report


# --- minicc ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _release_ports() -> Iterator[None]:
    """Torn down after the test's servers and phones (autouse fixtures set up first, so they
    finish last): their ports may be handed out again."""
    yield
    release_all()


@pytest.fixture
def minicc_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[MiniccServer]:
    """A started ``minicc serve`` with test extensions 2001-2003 (see ``TEST_EXTENSIONS``)."""
    server = MiniccServer(tmp_path)
    attach_log(request, "minicc server log", server.log)
    try:
        server.start()
        yield server
    finally:
        server.stop()


# --- sipp --------------------------------------------------------------------------------------

SippFactory = Callable[..., Sipp]


@pytest.fixture
def sipp(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SippFactory]:
    """Factory for :class:`Sipp` runs in this test's directory; all are stopped at the end.

    ``sipp("uac_call.xml", remote=server.sip_address, service="2002", users=[...]).run()``
    """
    require_tool("sipp")
    runs: list[Sipp] = []

    def make(scenario: str | Path, **kwargs: Any) -> Sipp:
        run = Sipp(scenario, workdir=tmp_path / "sipp", **kwargs)
        for title, path in (
            ("output", run.output_path),
            ("errors", run.errors_path),
            ("messages", run.messages_path),
        ):
            attach_log(request, f"sipp {run.name} {title}", path)
        runs.append(run)
        return run

    yield make
    for run in runs:
        run.stop()


# --- audio and baresip -------------------------------------------------------------------------

ToneFactory = Callable[..., Path]


@pytest.fixture(scope="session")
def tone_wav(tmp_path_factory: pytest.TempPathFactory) -> ToneFactory:
    """Factory for cached sine-tone WAVs: ``tone_wav(440)``, ``tone_wav(1000, encoding="ulaw")``.

    60 s long by default, 8 kHz mono; ``pcm16`` for baresip, ``ulaw`` for sipp's rtp_stream.
    """
    cache: dict[tuple[float, float, str], Path] = {}
    directory = tmp_path_factory.mktemp("tones")

    def make(
        frequency_hz: float,
        *,
        seconds: float = 60.0,
        encoding: Literal["pcm16", "ulaw", "alaw"] = "pcm16",
    ) -> Path:
        require_tool("sox")
        key = (frequency_hz, seconds, encoding)
        if key not in cache:
            path = directory / f"tone_{frequency_hz:g}hz_{seconds:g}s_{encoding}.wav"
            cache[key] = make_tone_wav(path, frequency_hz, seconds=seconds, encoding=encoding)
        return cache[key]

    return make


BaresipFactory = Callable[..., Baresip]


@pytest.fixture
def baresip(
    tmp_path: Path, request: pytest.FixtureRequest, tone_wav: ToneFactory
) -> Iterator[BaresipFactory]:
    """Factory for started :class:`Baresip` phones; all are stopped at the end.

    ``baresip("agent", account=Account(user="2001", registrar=server.sip_address,
    password=...), tone_hz=440)`` -- or ``audio_source=`` a WAV of your own.
    """
    require_tool("baresip")
    phones: list[Baresip] = []

    def make(
        name: str,
        *,
        account: Account,
        tone_hz: float = 440.0,
        audio_source: Path | None = None,
        **kwargs: Any,
    ) -> Baresip:
        source = audio_source if audio_source is not None else tone_wav(tone_hz)
        phone = Baresip(
            workdir=tmp_path / "baresip",
            name=name,
            account=account,
            audio_source=source,
            **kwargs,
        )
        attach_log(request, f"baresip {name}", phone.log_path)
        phones.append(phone)
        return phone.start()

    yield make
    for phone in phones:
        phone.stop()
