"""Tests of the harness's own logic that need no external tool (fast, always run)."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import struct
import subprocess
import sys
import textwrap
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.interop.audio import (
    ALAW_TO_FLOAT,
    ULAW_TO_FLOAT,
    analyze_wav,
    dominant_frequency,
    read_wav,
    rms_dbfs,
)
from tests.interop.baresip import (
    Account,
    Baresip,
    BaresipCtrl,
    BaresipError,
    netstring,
    split_netstrings,
)
from tests.interop.ports import (
    free_port,
    free_port_range,
    free_tcp_port,
    free_udp_port,
    udp_port_bound,
)
from tests.interop.process import ManagedProcess
from tests.interop.rtp import RtpSink, parse_rtp
from tests.interop.server import (
    Extension,
    MiniccServer,
    ServerError,
    sip_options_ping,
    wait_for_sip,
)
from tests.interop.sipp import (
    SCENARIOS_DIR,
    Sipp,
    SipUser,
    parse_stats_csv,
    render_scenario,
    write_users_csv,
)

# --- ports -------------------------------------------------------------------------------------


def test_free_port_is_bindable_on_udp_and_tcp_and_never_repeated() -> None:
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == len(ports)
    for port in ports[:3]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", port))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", port))


def test_single_transport_ports_and_ranges() -> None:
    assert free_udp_port() != free_tcp_port()
    base = free_port_range(6)
    assert base % 2 == 0
    for port in range(base, base + 6):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", port))
    assert free_port_range(6) not in range(base - 5, base + 6)


def test_udp_port_bound_sees_other_sockets() -> None:
    port = free_udp_port()
    assert not udp_port_bound(port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))
        assert udp_port_bound(port)
    assert not udp_port_bound(port)


# --- processes ---------------------------------------------------------------------------------


def test_managed_process_captures_output_and_exit_code(tmp_path: Path) -> None:
    proc = ManagedProcess(
        [sys.executable, "-c", "import sys; print('hello'); sys.exit(3)"],
        log_path=tmp_path / "p.log",
    )
    proc.start()
    assert proc.wait(timeout=10) == 3
    assert "hello" in proc.read_log()
    assert proc.read_log().startswith("$ ")


def test_managed_process_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('sigterm' + ' ignored', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = ManagedProcess([sys.executable, "-c", script], log_path=tmp_path / "p.log")
    proc.start()
    deadline = time.monotonic() + 10
    # Not just "ignored": the log's first line is the command line itself.
    while "sigterm ignored" not in proc.read_log() and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    code = proc.stop(grace=0.5)
    assert time.monotonic() - started < 5
    assert code == -9
    assert not proc.running()


# --- sipp: statistics, CSV, command line -------------------------------------------------------

STATS_CSV = (
    "StartTime;LastResetTime;CurrentTime;ElapsedTime(P);ElapsedTime(C);TargetRate;"
    "CallRate(P);CallRate(C);IncomingCall(P);IncomingCall(C);OutgoingCall(P);OutgoingCall(C);"
    "TotalCallCreated;CurrentCall;SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);"
    "FailedCall(C);\n"
    "2026-01-01\t10:00:00.0;2026-01-01\t10:00:00.0;2026-01-01\t10:00:00.1;00:00:00;00:00:00;"
    "10;0;0;0;0;0;0;0;0;0;0;0;0;\n"
    "2026-01-01\t10:00:00.0;2026-01-01\t10:00:01.0;2026-01-01\t10:00:01.1;00:00:01;00:00:01;"
    "10;4;4;0;0;4;4;4;0;3;3;1;1;\n"
)


def test_parse_stats_csv_returns_last_row() -> None:
    stats = parse_stats_csv(STATS_CSV)
    assert stats["TotalCallCreated"] == "4"
    assert stats["SuccessfulCall(C)"] == "3"
    assert stats["FailedCall(C)"] == "1"
    assert "" not in stats


def test_parse_stats_csv_needs_a_data_row() -> None:
    with pytest.raises(ValueError, match="no data row"):
        parse_stats_csv(STATS_CSV.splitlines()[0] + "\n")


def test_users_csv_holds_the_whole_auth_token(tmp_path: Path) -> None:
    path = write_users_csv(tmp_path / "u.csv", [SipUser(user="2001", password="s3cret")])
    assert path.read_text().splitlines() == [
        "SEQUENTIAL",
        "2001;s3cret;[authentication username=2001 password=s3cret]",
    ]
    with pytest.raises(ValueError):
        write_users_csv(tmp_path / "bad.csv", [SipUser(user="a;b", password="x")])


def test_sipp_command_line_is_bounded_and_ordered(tmp_path: Path) -> None:
    run = Sipp(
        "registrar_auth.xml",
        workdir=tmp_path,
        users=[SipUser(user="2001", password="pw")],
        index_users=True,
        calls=5,
        rate=2.5,
        limit=3,
        timeout_s=12.5,
    )
    argv = run.argv
    assert argv[0] == "sipp"
    assert argv.index("-inf") < argv.index("-infindex")
    assert argv[argv.index("-timeout") + 1] == "13s"
    assert "-timeout_error" in argv
    assert "-nostdin" in argv
    for flag, value in (("-m", "5"), ("-r", "2.5"), ("-l", "3"), ("-i", "127.0.0.1")):
        assert argv[argv.index(flag) + 1] == value
    assert argv[argv.index("-p") + 1] == str(run.local_port)
    assert argv[argv.index("-cp") + 1] == str(run.control_port)
    assert argv[argv.index("-mp") + 1] == str(run.media_port)
    assert len({run.local_port, run.control_port, run.media_port}) == 3
    assert (run.dir / "users.csv").exists()
    assert "-trace_stat" in argv
    assert "-trace_err" in argv


def test_sipp_fills_scenario_variable_defaults(tmp_path: Path) -> None:
    answer = Sipp("uas_answer.xml", workdir=tmp_path)
    assert answer.variables == {"rtpport": answer.media_port, "ringms": "0"}
    register = Sipp("register.xml", workdir=tmp_path, variables={"expires": 0})
    assert register.variables == {"expires": 0}
    argv = register.argv
    assert argv[argv.index("-set") + 1 : argv.index("-set") + 3] == ["expires", "0"]


def test_builtin_scenario_uses_sn(tmp_path: Path) -> None:
    argv = Sipp("uas", workdir=tmp_path, rtp_echo=True).argv
    assert argv[argv.index("-sn") + 1] == "uas"
    assert "-rtp_echo" in argv


def test_template_scenarios_are_rendered(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="AUDIO_WAV"):
        Sipp("uac_call_wav.xml", workdir=tmp_path)
    run = Sipp(
        "uac_call_wav.xml", workdir=tmp_path, substitutions={"AUDIO_WAV": "/x/tone_ulaw.wav"}
    )
    rendered = Path(run.argv[run.argv.index("-sf") + 1])
    assert rendered.parent == run.dir
    assert 'rtp_stream="/x/tone_ulaw.wav,-1,0"' in rendered.read_text()
    assert not re.search(r"@[A-Z_]+@", rendered.read_text())


def test_render_scenario_replaces_every_placeholder(tmp_path: Path) -> None:
    source = tmp_path / "t.xml"
    source.write_text("<a b='@ONE@'>@TWO@ @ONE@</a>")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = render_scenario(source, out_dir, {"ONE": "1", "TWO": "2"})
    assert out.read_text() == "<a b='1'>2 1</a>"


@pytest.mark.parametrize("path", sorted(SCENARIOS_DIR.glob("*.xml")), ids=lambda p: p.name)
def test_scenarios_are_well_formed_xml(path: Path) -> None:
    # sipp's parser takes \" inside attribute values (verifyauth, ereg); anything else the
    # stdlib parser rejects (a '<' in an attribute, an unclosed element) sipp rejects too.
    import xml.etree.ElementTree as ET

    text = path.read_text(encoding="iso-8859-1").replace('\\"', "'")
    body = text.split("?>", 1)[1].split(">", 1)[1]  # drop the XML declaration and DOCTYPE
    root = ET.fromstring(body)
    assert root.tag == "scenario"
    assert root.get("name")


# --- baresip: netstrings, ctrl client, config --------------------------------------------------


def test_netstring_round_trip_in_pieces() -> None:
    data = netstring(b'{"a":1}') + netstring(b"") + netstring(b"xyz")
    assert data == b'7:{"a":1},0:,3:xyz,'
    payloads, rest = split_netstrings(data[:5])
    assert payloads == []
    assert rest == data[:5]
    payloads, rest = split_netstrings(data)
    assert payloads == [b'{"a":1}', b"", b"xyz"]
    assert rest == b""
    with pytest.raises(ValueError):
        split_netstrings(b"x3:abc,")
    with pytest.raises(ValueError):
        split_netstrings(b"3:abcd")


class FakeCtrlServer:
    """A TCP peer speaking ctrl_tcp: answers each command, sends an event before and after."""

    def __init__(self) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.commands: list[dict[str, str]] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _send(self, conn: socket.socket, message: dict[str, object]) -> None:
        conn.sendall(netstring(json.dumps(message).encode()))

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            self._send(conn, {"event": True, "type": "REGISTER_OK", "class": "register"})
            buffer = b""
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                payloads, buffer = split_netstrings(buffer + data)
                for payload in payloads:
                    request = json.loads(payload)
                    self.commands.append(request)
                    # An event first, then the response, in one write: the client must split.
                    event = {"event": True, "type": "CALL_RINGING", "param": request["params"]}
                    response = {
                        "response": True,
                        "ok": request["command"] != "bad",
                        "data": f"did {request['command']}",
                        "token": request["token"],
                    }
                    conn.sendall(
                        netstring(json.dumps(event).encode())
                        + netstring(json.dumps(response).encode())
                    )

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def fake_ctrl() -> Iterator[FakeCtrlServer]:
    server = FakeCtrlServer()
    yield server
    server.close()


def test_ctrl_client_matches_responses_and_keeps_events(fake_ctrl: FakeCtrlServer) -> None:
    ctrl = BaresipCtrl(fake_ctrl.port, connect_timeout=5)
    try:
        response = ctrl.command("dial", "sip:1@127.0.0.1", timeout=5)
        assert response["ok"] is True
        assert response["data"] == "did dial"
        assert fake_ctrl.commands[0]["params"] == "sip:1@127.0.0.1"
        assert ctrl.command("bad", timeout=5)["ok"] is False
        # The event that arrived before anyone waited is still found, and only once.
        assert ctrl.wait_event("REGISTER_OK", timeout=5)["class"] == "register"
        first = ctrl.wait_event("CALL_RINGING", timeout=5)
        second = ctrl.wait_event(lambda e: e.get("type") == "CALL_RINGING", timeout=5)
        assert (first["param"], second["param"]) == ("sip:1@127.0.0.1", "")
        with pytest.raises(BaresipError, match="events so far"):
            ctrl.wait_event("CALL_ESTABLISHED", timeout=0.2)
    finally:
        ctrl.close()


def test_ctrl_client_gives_up_when_nothing_listens() -> None:
    with pytest.raises(BaresipError, match="not reachable"):
        BaresipCtrl(free_tcp_port(), connect_timeout=0.3)


def test_account_lines() -> None:
    registered = Account(user="2001", registrar="127.0.0.1:5060", password="pw")
    assert registered.line("127.0.0.1:7000") == (
        "<sip:2001@127.0.0.1:5060>;auth_pass=pw;regint=600;answermode=auto;audio_codecs=PCMU,PCMA"
    )
    direct = Account(user="bob", answermode="manual", codecs=("PCMA",))
    assert direct.line("127.0.0.1:7000") == (
        "<sip:bob@127.0.0.1:7000>;regint=0;answermode=manual;audio_codecs=PCMA"
    )


def test_two_baresip_configs_do_not_share_ports(tmp_path: Path) -> None:
    tone = tmp_path / "t.wav"
    phones = [
        Baresip(workdir=tmp_path, name=n, account=Account(user=n), audio_source=tone)
        for n in ("a", "b")
    ]
    ports = [{p.sip_port, p.ctrl_port, *range(p.rtp_ports[0], p.rtp_ports[1] + 1)} for p in phones]
    assert not ports[0] & ports[1]
    phones[0].write_config()
    config = (phones[0].config_dir / "config").read_text()
    assert f"sip_listen              127.0.0.1:{phones[0].sip_port}" in config
    assert f"audio_source            aufile,{tone}" in config
    assert "stdio.so" not in config
    assert (phones[0].config_dir / "accounts").read_text().startswith("<sip:a@127.0.0.1:")


# --- audio -------------------------------------------------------------------------------------


def test_g711_tables_match_the_standard() -> None:
    # ITU-T G.711 reference points (as 16-bit values).
    assert ULAW_TO_FLOAT[0xFF] * 32768 == 0
    assert ULAW_TO_FLOAT[0x7F] * 32768 == 0
    assert ULAW_TO_FLOAT[0x80] * 32768 == 32124
    assert ULAW_TO_FLOAT[0x00] * 32768 == -32124
    assert ALAW_TO_FLOAT[0xD5] * 32768 == 8
    assert ALAW_TO_FLOAT[0x55] * 32768 == -8
    assert ALAW_TO_FLOAT[0xAA] * 32768 == 32256
    assert ALAW_TO_FLOAT[0x2A] * 32768 == -32256


def _sine(freq: float, seconds: float, rate: int = 8000, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


def test_rms_and_dominant_frequency() -> None:
    tone = _sine(440, 1.0)
    assert rms_dbfs(tone) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.05)
    assert dominant_frequency(tone, 8000) == pytest.approx(440, abs=2)
    assert dominant_frequency(tone + _sine(1000, 1.0, amplitude=0.1), 8000) == pytest.approx(
        440, abs=2
    )
    assert rms_dbfs(np.zeros(100)) == -200.0


def _write_pcm16(path: Path, samples: np.ndarray, rate: int = 8000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((samples * 32767).astype("<i2").tobytes())


def test_read_pcm16_wav_and_analyze(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    _write_pcm16(path, np.concatenate([np.zeros(4000), _sine(1000, 1.0)]))
    wav = read_wav(path)
    assert wav.rate == 8000
    assert wav.duration_s == pytest.approx(1.5)
    summary = analyze_wav(path, skip_s=0.5)
    assert summary.dominant_hz == pytest.approx(1000, abs=2)
    assert not summary.silent


def test_read_wav_with_unfinalised_header(tmp_path: Path) -> None:
    path = tmp_path / "open.wav"
    _write_pcm16(path, _sine(440, 0.5))
    data = bytearray(path.read_bytes())
    data_at = data.index(b"data")
    data[data_at + 4 : data_at + 8] = struct.pack("<I", 0)  # as a writer that never closed
    path.write_bytes(bytes(data))
    assert read_wav(path).duration_s == pytest.approx(0.5)


def test_read_ulaw_wav(tmp_path: Path) -> None:
    # A u-law WAV as minicc's recorder writes them: format tag 7, 8 bits, one byte per sample.
    ulaw_of = {round(v * 32768): code for code, v in enumerate(ULAW_TO_FLOAT)}
    levels = np.array(sorted(ulaw_of))
    samples = _sine(800, 0.5) * 32768
    codes = bytes(ulaw_of[int(levels[np.abs(levels - s).argmin()])] for s in samples)
    fmt = struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8) + b"\x00\x00"
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"fact" + struct.pack("<II", 4, len(codes))
    body += b"data" + struct.pack("<I", len(codes)) + codes
    path = tmp_path / "ulaw.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    wav = read_wav(path)
    assert wav.format_tag == 7
    assert dominant_frequency(wav.samples, wav.rate) == pytest.approx(800, abs=3)


def test_read_wav_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(b"not a wav file at all")
    with pytest.raises(ValueError, match="RIFF"):
        read_wav(path)


# --- RTP sink ----------------------------------------------------------------------------------


def _rtp(pt: int, seq: int, ts: int, payload: bytes, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq, ts, 0x1234) + payload


def test_parse_rtp_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="less than 12"):
        parse_rtp(b"\x80\x00", ("127.0.0.1", 1))
    with pytest.raises(ValueError, match="version"):
        parse_rtp(b"\x00" * 12, ("127.0.0.1", 1))
    packet = parse_rtp(_rtp(8, 7, 160, b"\xd5" * 4, marker=True), ("127.0.0.1", 1))
    assert (packet.payload_type, packet.sequence, packet.timestamp) == (8, 7, 160)
    assert packet.marker
    assert packet.payload == b"\xd5" * 4


def test_rtp_sink_counts_audio_and_dtmf() -> None:
    with RtpSink() as sink, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        target = ("127.0.0.1", sink.port)
        for i in range(10):
            tx.sendto(_rtp(0, i, i * 160, b"\xff" * 160), target)
        # Digit 5: two progress packets, then the end packet sent three times (RFC 4733 2.5.1.4).
        for i, flags in enumerate((0x00, 0x00, 0x80, 0x80, 0x80)):
            tx.sendto(_rtp(101, 100 + i, 4000, bytes([5, flags, 0, 160])), target)
        tx.sendto(_rtp(101, 200, 8000, bytes([11, 0x80, 0, 160])), target)
        tx.sendto(b"garbage", target)
        assert sink.wait_for_packets(16, timeout=5)
    assert sink.counts() == {0: 10, 101: 6}
    assert sink.dtmf_digits() == "5#"
    assert len(sink.audio()) == 1600


# --- minicc server lifecycle, against a stand-in interpreter -----------------------------------

FAKE_MINICC = textwrap.dedent(
    """\
    #!{python}
    # Stand-in for "python -m minicc" that answers the CLI calls the harness makes, to test
    # the harness's lifecycle logic before the real server exists. Not a SIP server.
    import json, pathlib, signal, socket, sys

    args = sys.argv[3:]  # after "-m minicc"
    opts = dict(zip(args[2::2], args[3::2])) if len(args) > 2 else {{}}
    if args[:2] == ["user", "add"]:
        data = pathlib.Path(opts["--data-dir"])
        if not (data / "prepared").exists():
            sys.exit("no such tenant: demo")
        with (data / "users.txt").open("a") as fh:
            fh.write(opts["--extension"] + ":" + opts["--password"] + "\\n")
    elif args[:2] == ["cdr", "export"]:
        print(json.dumps([{{"tenant": opts["--tenant"], "disposition": "ANSWERED"}}]))
    elif args[:1] == ["serve"]:
        check = "--check" in args
        rest = [a for a in args[1:] if a != "--check"]
        opts = dict(zip(rest[0::2], rest[1::2]))
        known = {{"--data-dir", "--bind", "--sip-port", "--http-port", "--rtp-port-min",
                 "--rtp-port-max"}}
        if set(opts) - known:
            sys.exit("unknown option")
        if check:
            pathlib.Path(opts["--data-dir"], "prepared").write_text("yes")
            sys.exit(0)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((opts["--bind"], int(opts["--sip-port"])))
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        print("fake minicc serving", flush=True)
        while True:
            data, addr = sock.recvfrom(65535)
            if data.startswith(b"OPTIONS "):
                sock.sendto(b"SIP/2.0 200 OK\\r\\nContent-Length: 0\\r\\n\\r\\n", addr)
    else:
        sys.exit("unknown command: " + " ".join(args))
    """
)


@pytest.fixture
def fake_python(tmp_path: Path) -> str:
    path = tmp_path / "fake-python"
    path.write_text(FAKE_MINICC.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_minicc_server_provisions_starts_restarts_and_stops(
    tmp_path: Path, fake_python: str
) -> None:
    extensions = (Extension(number="2001", password="pw1", name="A"),)
    server = MiniccServer(tmp_path, extensions=extensions, python=fake_python, ready_timeout=10)
    with server:
        assert server.running()
        assert sip_options_ping("127.0.0.1", server.sip_port) == "SIP/2.0 200 OK"
        assert (server.data_dir / "users.txt").read_text() == "2001:pw1\n"
        assert server.rtp_ports[1] - server.rtp_ports[0] == 199
        assert server.cdr_export() == [{"tenant": "demo", "disposition": "ANSWERED"}]
        first_pid = server.pid
        server.restart()
        assert server.pid != first_pid
        assert server.running()
        # Provisioning happens once per data directory, not on every start.
        assert (server.data_dir / "users.txt").read_text() == "2001:pw1\n"
    assert not server.running()
    log_text = server.read_log()
    assert "fake minicc serving" in log_text
    assert "user add" in log_text
    assert server.extension("2001").password == "pw1"


def test_minicc_server_reports_a_crash_with_its_output(tmp_path: Path, fake_python: str) -> None:
    server = MiniccServer(
        tmp_path, extensions=(), python=fake_python, extra_args=("--bogus", "1"), ready_timeout=10
    )
    with pytest.raises(ServerError, match="exited"):
        server.start()
    assert not server.running()


def test_wait_for_sip_is_bounded() -> None:
    # A bound UDP socket that never answers.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(ServerError, match="no SIP answer"):
            wait_for_sip("127.0.0.1", port, timeout=0.5)
        assert time.monotonic() - started < 3
    assert sip_options_ping("127.0.0.1", free_udp_port(), timeout=0.2) is None


# --- tool markers: skip locally, fail under CI -------------------------------------------------

MARKED_TEST = textwrap.dedent(
    """\
    import pytest

    @pytest.mark.sipp
    def test_needs_sipp():
        pass

    def test_plain():
        pass
    """
)
CONFTEST_USING_OURS = (
    "from tests.conftest import pytest_configure, pytest_runtest_setup, pytest_terminal_summary\n"
)


@pytest.mark.parametrize(("ci", "expected_exit"), [(None, 0), ("true", 1)], ids=["local", "ci"])
def test_missing_tool_skips_locally_and_fails_in_ci(
    tmp_path: Path, ci: str | None, expected_exit: int
) -> None:
    (tmp_path / "test_marked.py").write_text(MARKED_TEST)
    (tmp_path / "conftest.py").write_text(CONFTEST_USING_OURS)
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(empty_bin)  # no sipp on this PATH
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    if ci is not None:
        env["CI"] = ci
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == expected_exit, output
    assert "REAL-CLIENT TEST NOT RUN: sipp" in output
    assert "apt-get install" in output
    if ci is None:
        assert "1 passed, 1 skipped" in output
    else:
        assert "CI is set" in output
        assert "1 passed" in output


def test_measurements_take_a_wav_directly(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    _write_pcm16(path, _sine(600, 1.0))
    wav = read_wav(path)
    assert dominant_frequency(wav) == pytest.approx(600, abs=2)
    assert rms_dbfs(wav) == pytest.approx(rms_dbfs(wav.samples))
    with pytest.raises(TypeError, match="sample rate"):
        dominant_frequency(wav.samples)
