"""ControlStore: tenants, domains, the default tenant, settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from minicc.store.control import ControlStore, normalize_domain, validate_tenant_name
from minicc.store.database import StoreError


@pytest.fixture
def control(tmp_path: Path) -> ControlStore:
    store = ControlStore(tmp_path / "data")
    yield store
    store.close()


def test_creates_data_dir_and_files(tmp_path: Path) -> None:
    with ControlStore(tmp_path / "a" / "b") as store:
        assert (tmp_path / "a" / "b" / "control.db").is_file()
        assert (tmp_path / "a" / "b" / "tenants").is_dir()
        assert store.list_tenants() == []


def test_add_and_get_tenant(control: ControlStore) -> None:
    acme = control.add_tenant("acme", "SIP.Acme.Example.")
    assert acme.name == "acme"
    assert acme.domain == "sip.acme.example"
    assert acme.created_at.tzinfo is not None
    assert control.get_tenant("acme") == acme
    assert control.get_tenant("sip.acme.example") == acme
    assert control.get_tenant("SIP.ACME.example") == acme
    assert control.get_tenant("nobody") is None
    assert [t.name for t in control.list_tenants()] == ["acme"]


def test_duplicates_name_the_field(control: ControlStore) -> None:
    control.add_tenant("acme", "acme.example")
    with pytest.raises(StoreError, match="tenant name 'acme' is already taken"):
        control.add_tenant("acme", "other.example")
    with pytest.raises(
        StoreError, match=r"domain 'acme\.example' already belongs to tenant 'acme'"
    ):
        control.add_tenant("other", "ACME.example")
    assert len(control.list_tenants()) == 1


@pytest.mark.parametrize("name", ["", "Acme", "a_b", "-ab", "ab-", "a" * 33, "../x", "a b"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(StoreError, match=r"tenant name .* is invalid"):
        validate_tenant_name(name)


@pytest.mark.parametrize("name", ["a", "acme", "acme-2", "x" * 32])
def test_valid_names(name: str) -> None:
    assert validate_tenant_name(name) == name


@pytest.mark.parametrize(
    ("domain", "problem"),
    [
        ("", "invalid"),
        ("-bad.example", "invalid"),
        ("bad_.example", "invalid"),
        ("a..b", "invalid"),
        ("x" * 64 + ".example", "invalid"),
        ("10.0.0.1", "IP address"),
        ("[::1]", "IP address"),
    ],
)
def test_invalid_domains(domain: str, problem: str) -> None:
    with pytest.raises(StoreError, match=f"domain .* {problem}"):
        normalize_domain(domain)


def test_aliases_and_resolution(control: ControlStore) -> None:
    acme = control.add_tenant("acme", "acme.example")
    control.add_domain_alias("acme", "pbx.acme.example")
    with pytest.raises(StoreError, match="already belongs to tenant 'acme'"):
        control.add_domain_alias("acme", "acme.example")
    with pytest.raises(StoreError, match="no tenant named 'ghost'"):
        control.add_domain_alias("ghost", "g.example")
    assert control.resolve_domain("pbx.acme.example").id == acme.id
    assert control.resolve_domain("ACME.example.").id == acme.id
    assert control.get_tenant("acme").aliases == ("pbx.acme.example",)
    assert control.resolve_domain("unknown.example") is None


def test_default_tenant_serves_own_addresses(control: ControlStore) -> None:
    demo = control.add_tenant("demo", "demo.localhost")
    own = ["127.0.0.1", "::1", "localhost"]
    assert control.default_tenant() is None
    assert control.resolve_domain("127.0.0.1", own) is None
    control.set_default_tenant("demo.localhost")
    assert control.default_tenant() == demo
    assert control.resolve_domain("127.0.0.1", own) == demo
    assert control.resolve_domain("[::1]", own) == demo
    assert control.resolve_domain("LOCALHOST", own) == demo
    assert control.resolve_domain("192.0.2.1", own) is None
    with pytest.raises(StoreError, match="no tenant named 'nope'"):
        control.set_default_tenant("nope")


def test_settings_upsert(control: ControlStore) -> None:
    assert control.get_setting("k") is None
    control.set_setting("k", "1")
    control.set_setting("k", "2")
    assert control.get_setting("k") == "2"


def test_tenant_path_and_open(control: ControlStore) -> None:
    acme = control.add_tenant("acme", "acme.example")
    assert control.tenant_path(acme) == control.data_dir / "tenants" / "acme.db"
    with control.open_tenant(acme) as store:
        assert store.tenant == "acme"
    assert control.tenant_path(acme).is_file()


def test_second_process_view(tmp_path: Path) -> None:
    """A server and the CLI each hold a ControlStore on the same folder."""
    with ControlStore(tmp_path) as server, ControlStore(tmp_path) as cli:
        before = server.data_version()
        cli.add_tenant("late", "late.example")
        assert server.data_version() != before
        assert server.get_tenant("late") is not None


def test_unusable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot create data dir"):
        ControlStore(blocker / "data")
