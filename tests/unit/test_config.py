"""ServeConfig loading: precedence, the TOML file, and every error message."""

from __future__ import annotations

from pathlib import Path

import pytest

from minicc.config import (
    ConfigError,
    ServeConfig,
    default_data_dir,
    env_var,
    flag_name,
    load_serve_config,
    resolve_data_dir,
)


def _write(tmp_path: Path, text: str, name: str = "minicc.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults() -> None:
    config = load_serve_config()
    assert config == ServeConfig(data_dir=default_data_dir())
    assert (config.bind, config.sip_port, config.http_port) == ("127.0.0.1", 5060, 8080)
    assert config.sip_tls_port is None and not config.tls_enabled
    assert (config.rtp_port_min, config.rtp_port_max) == (20000, 29999)
    assert config.ring_timeout == 60.0 and config.log_level == "info"
    assert default_data_dir().name == "minicc"


def test_names() -> None:
    assert env_var("sip_port") == "MINICC_SIP_PORT"
    assert flag_name("sip_port") == "--sip-port"


def test_precedence_flag_env_file_default(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[serve]\nsip_port = 5070\nhttp_port = 8070\nbind = "0.0.0.0"\nring_timeout = 30\n',
    )
    env = {"MINICC_SIP_PORT": "5080", "MINICC_HTTP_PORT": "8090"}
    config = load_serve_config(flags={"sip_port": "5090"}, env=env, config_file=path)
    assert config.sip_port == 5090  # flag beats env and file
    assert config.http_port == 8090  # env beats file
    assert config.bind == "0.0.0.0"  # file beats default
    assert config.ring_timeout == 30.0
    assert config.rtp_port_min == 20000  # default


def test_config_file_from_env_and_flag_wins(tmp_path: Path) -> None:
    from_env = _write(tmp_path, "[serve]\nsip_port = 5071\n", "env.toml")
    from_flag = _write(tmp_path, "[serve]\nsip_port = 5072\n", "flag.toml")
    assert load_serve_config(env={"MINICC_CONFIG": str(from_env)}).sip_port == 5071
    config = load_serve_config(env={"MINICC_CONFIG": str(from_env)}, config_file=from_flag)
    assert config.sip_port == 5072


def test_empty_env_counts_as_unset() -> None:
    assert load_serve_config(env={"MINICC_SIP_PORT": ""}).sip_port == 5060


def test_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, '[serve]\ndata_dir = "data"\n')
    assert load_serve_config(config_file=path).data_dir == tmp_path / "data"
    monkeypatch.chdir(tmp_path)
    assert load_serve_config(flags={"data_dir": "rel"}).data_dir == tmp_path / "rel"
    home = load_serve_config(env={"MINICC_DATA_DIR": "~/x"}).data_dir
    assert home.is_absolute() and "~" not in str(home)


def test_resolve_data_dir(tmp_path: Path) -> None:
    env = {"MINICC_DATA_DIR": str(tmp_path / "env")}
    assert resolve_data_dir(tmp_path / "flag", env) == tmp_path / "flag"
    assert resolve_data_dir(None, env) == tmp_path / "env"
    assert resolve_data_dir(None, {}) == default_data_dir()


def test_tls(tmp_path: Path) -> None:
    cert = _write(tmp_path, "cert", "cert.pem")
    key = _write(tmp_path, "key", "key.pem")
    config = load_serve_config(flags={"tls_cert": str(cert), "tls_key": str(key)})
    assert config.tls_enabled and config.sip_tls_port == 5061
    config = load_serve_config(
        flags={"tls_cert": str(cert), "tls_key": str(key), "sip_tls_port": "5071"}
    )
    assert config.sip_tls_port == 5071


def test_addresses() -> None:
    local = load_serve_config()
    assert local.advertised_address == "127.0.0.1" and not local.is_wildcard_bind
    wild = load_serve_config(flags={"bind": "0.0.0.0"})
    assert wild.is_wildcard_bind and wild.advertised_address == "127.0.0.1"
    public = load_serve_config(flags={"bind": "0.0.0.0", "public_address": "192.0.2.7"})
    assert public.advertised_address == "192.0.2.7"
    assert {"192.0.2.7", "127.0.0.1", "localhost"} <= public.own_addresses()
    assert "0.0.0.0" not in public.own_addresses()
    assert load_serve_config(flags={"bind": "LocalHost"}).bind == "localhost"
    assert load_serve_config(flags={"bind": "[::1]"}).bind == "::1"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"sip_port": "70000"}, "sip_port = 70000 from --sip-port: must be a port number 1-65535"),
        ({"http_port": "0"}, "http_port = 0 from --http-port: must be a port number 1-65535"),
        ({"sip_port": "abc"}, "sip_port = abc from --sip-port: must be a port number 1-65535"),
        ({"bind": "300.1.2.3"}, "bind = 300.1.2.3 from --bind: must be an IP address"),
        ({"bind": "bad host"}, 'bind = "bad host" from --bind: must be an IP address'),
        (
            {"public_address": "0.0.0.0"},
            "public_address = 0.0.0.0 from --public-address: must be a concrete address",
        ),
        (
            {"ring_timeout": "0"},
            "ring_timeout = 0 from --ring-timeout: must be a number of seconds between 1 and 3600",
        ),
        (
            {"log_level": "loud"},
            "log_level = loud from --log-level: must be one of debug, info, warning, error",
        ),
        (
            {"rtp_port_min": "30000"},
            "rtp_port_min = 30000 from --rtp-port-min: must be below rtp_port_max (29999)",
        ),
        (
            {"http_port": "5060"},
            "http_port = 5060 from --http-port: same port as sip_port: give each listener",
        ),
        (
            {"sip_port": "20000"},
            "sip_port = 20000 from --sip-port: inside the RTP range 20000-29999: move one",
        ),
        (
            {"sip_tls_port": "5061"},
            "sip_tls_port = 5061 from --sip-tls-port: SIP over TLS needs tls_cert and tls_key",
        ),
        (
            {"tls_cert": "/nonexistent/cert.pem"},
            "tls_cert = /nonexistent/cert.pem from --tls-cert: tls_key is not set: set both",
        ),
        (
            {"tls_cert": "/nonexistent/cert.pem", "tls_key": "/nonexistent/key.pem"},
            "tls_cert = /nonexistent/cert.pem from --tls-cert: file not found: give the path",
        ),
    ],
)
def test_flag_errors(flags: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_serve_config(flags=flags)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_env_error_names_variable() -> None:
    with pytest.raises(ConfigError, match=r"^sip_port = 5o60 from MINICC_SIP_PORT: must be a port"):
        load_serve_config(env={"MINICC_SIP_PORT": "5o60"})


def test_file_value_error_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, '# comment\n[serve]\nbind = "127.0.0.1"\nsip_port = 70000\n')
    with pytest.raises(ConfigError) as info:
        load_serve_config(config_file=path)
    assert str(info.value) == f"sip_port = 70000 in {path}:4: must be a port number 1-65535"


def test_file_type_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, '[serve]\nsip_port = "5060x"\n')
    with pytest.raises(ConfigError, match=r'sip_port = "5060x" in .*:2: must be a port'):
        load_serve_config(config_file=path)
    path = _write(tmp_path, "[serve]\nring_timeout = true\n")
    with pytest.raises(ConfigError, match=r"ring_timeout = true in .*:2: must be a number"):
        load_serve_config(config_file=path)


def test_unknown_key_did_you_mean(tmp_path: Path) -> None:
    path = _write(tmp_path, "[serve]\nsip_port = 5060\nhttp_prot = 8081\n")
    with pytest.raises(ConfigError) as info:
        load_serve_config(config_file=path)
    assert str(info.value) == f"unknown key 'http_prot' in {path}:3: did you mean 'http_port'?"


def test_unknown_key_without_close_match(tmp_path: Path) -> None:
    path = _write(tmp_path, "[serve]\nzzz = 1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'zzz' in .*:2: valid keys are data_dir,"):
        load_serve_config(config_file=path)


def test_top_level_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, "sip_port = 5060\n")
    with pytest.raises(
        ConfigError, match=r"sip_port in .*:1 is outside any table: put serve settings under"
    ):
        load_serve_config(config_file=path)
    path = _write(tmp_path, "[server]\nsip_port = 5060\n")
    with pytest.raises(ConfigError, match=r"unknown key 'server' in .*:1: this file holds"):
        load_serve_config(config_file=path)
    path = _write(tmp_path, "serve = 1\n")
    with pytest.raises(ConfigError, match=r"serve in .*:1 must be a table"):
        load_serve_config(config_file=path)


def test_bad_toml(tmp_path: Path) -> None:
    path = _write(tmp_path, "[serve\nsip_port = \n")
    with pytest.raises(ConfigError, match=r"config file .* is not valid TOML: .*line 1.*fix"):
        load_serve_config(config_file=path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope.toml \(from --config\) not found"):
        load_serve_config(config_file=tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"\(from MINICC_CONFIG\) not found"):
        load_serve_config(env={"MINICC_CONFIG": str(tmp_path / "nope.toml")})


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match=r"cannot be read .*UTF-8"):
        load_serve_config(config_file=path)


def test_unknown_flag_key_is_a_bug() -> None:
    with pytest.raises(ValueError, match="unknown flag keys"):
        load_serve_config(flags={"nope": "1"})
