"""First run: data dir checks, port checks, the demo tenant and its logins file."""

from __future__ import annotations

import itertools
import socket
import stat
from pathlib import Path

import pytest

from minicc.bootstrap import (
    DEMO_LOGINS_FILE,
    StartupError,
    check_ports,
    ensure_demo,
    load_demo_logins,
    prepare_data_dir,
)
from minicc.config import ServeConfig
from minicc.store.control import ControlStore
from minicc.switch.sip.auth import DigestAlgorithm, compute_ha1


def _tokens() -> itertools.count[int]:
    return itertools.count(1)


def test_first_run_creates_demo(tmp_path: Path) -> None:
    counter = _tokens()
    with ControlStore(tmp_path) as control:
        info = ensure_demo(control, lambda: f"password-{next(counter)}")
        assert info is not None
        assert info.tenant == "demo" and info.domain == "demo.localhost"
        assert [(x.extension, x.password) for x in info.logins] == [
            ("1001", "password-1"),
            ("1002", "password-2"),
            ("1003", "password-3"),
        ]
        demo = control.default_tenant()
        assert demo is not None and demo.name == "demo"
        assert control.resolve_domain("127.0.0.1", ["127.0.0.1"]) == demo
        with control.open_tenant(demo) as store:
            ext = store.credentials("1002")
            assert ext is not None and ext.name == "Agent Two"
            assert ext.ha1_md5 == compute_ha1(
                "1002", "demo.localhost", "password-2", DigestAlgorithm.MD5
            )
        # Second start: nothing new.
        assert ensure_demo(control, lambda: "unused") is None
    assert load_demo_logins(tmp_path) == info


def test_logins_file_is_private(tmp_path: Path) -> None:
    with ControlStore(tmp_path) as control:
        ensure_demo(control)
    mode = stat.S_IMODE((tmp_path / DEMO_LOGINS_FILE).stat().st_mode)
    assert mode == 0o600
    loaded = load_demo_logins(tmp_path)
    assert loaded is not None and len({x.password for x in loaded.logins}) == 3
    assert all(len(x.password) >= 12 for x in loaded.logins)


def test_no_demo_when_tenants_exist(tmp_path: Path) -> None:
    with ControlStore(tmp_path) as control:
        control.add_tenant("acme", "acme.example")
        assert ensure_demo(control) is None
        assert control.get_tenant("demo") is None
    assert load_demo_logins(tmp_path) is None


def test_unreadable_logins_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / DEMO_LOGINS_FILE).write_text("tenant = [broken")
    assert load_demo_logins(tmp_path) is None


def test_prepare_data_dir(tmp_path: Path) -> None:
    target = tmp_path / "x" / "y"
    prepare_data_dir(target)
    assert target.is_dir()
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    prepare_data_dir(target)  # existing is fine


def test_prepare_data_dir_errors(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(
        StartupError, match=r"data dir .*afile is a file, not a folder: .*--data-dir"
    ):
        prepare_data_dir(afile)
    with pytest.raises(
        StartupError,
        match=r"data dir .*afile/sub is not usable \(Not a directory\).*MINICC_DATA_DIR",
    ):
        prepare_data_dir(afile / "sub")


def _config(tmp_path: Path, **kw: object) -> ServeConfig:
    return ServeConfig(data_dir=tmp_path, **kw)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_check_ports_free(tmp_path: Path) -> None:
    check_ports(_config(tmp_path, sip_port=_free_port(), http_port=_free_port()))


def test_check_ports_tcp_in_use(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(
            StartupError,
            match=rf"HTTP port {port}/tcp on 127.0.0.1 is already in use: .*--http-port / "
            r"MINICC_HTTP_PORT / http_port in the config file",
        ):
            check_ports(_config(tmp_path, sip_port=_free_port(), http_port=port))


def test_check_ports_udp_in_use(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        with pytest.raises(
            StartupError, match=rf"SIP port {port}/udp .*already in use.*--sip-port"
        ):
            check_ports(_config(tmp_path, sip_port=port, http_port=_free_port()))


def test_check_ports_foreign_address(tmp_path: Path) -> None:
    # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never an address of this machine.
    with pytest.raises(StartupError, match=r"bind address 192\.0\.2\.1 is not an address of this"):
        check_ports(_config(tmp_path, bind="192.0.2.1"))
