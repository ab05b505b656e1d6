"""TenantStore: extensions with HA1, registrar bindings, call-detail records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from minicc.store.database import StoreError
from minicc.store.tenant import TenantStore
from minicc.switch.sip.auth import DigestAlgorithm, compute_ha1
from minicc.tenants.models import Binding, CallRecord, Disposition, HangupSide

T0 = datetime(2024, 5, 1, 9, 0, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> TenantStore:
    s = TenantStore(tmp_path / "acme.db", tenant="acme")
    yield s
    s.close()


def _cdr(call_id: str, start: datetime, **kw: object) -> CallRecord:
    fields: dict[str, object] = {
        "tenant": "acme",
        "call_id": call_id,
        "from_user": "1001",
        "to_user": "1002",
        "start": start,
        "end": start + timedelta(seconds=30),
        "disposition": Disposition.ANSWERED,
        "hangup_side": HangupSide.CALLER,
        "answer": start + timedelta(seconds=5),
    }
    fields.update(kw)
    return CallRecord(**fields)  # type: ignore[arg-type]


def _binding(contact: str = "sip:1001@192.0.2.5:5062", expires_at: float = 2000.0) -> Binding:
    return Binding(
        extension="1001",
        contact_uri=contact,
        expires_at=expires_at,
        call_id="reg-1",
        cseq=1,
        transport="udp",
        source_host="192.0.2.5",
        source_port=5062,
        user_agent="baresip",
    )


def test_extension_stores_ha1_not_password(store: TenantStore, tmp_path: Path) -> None:
    ext = store.add_extension("1001", "s3cret-pass", "acme.example", "Ada")
    assert ext.ha1_md5 == compute_ha1("1001", "acme.example", "s3cret-pass", DigestAlgorithm.MD5)
    assert ext.ha1(DigestAlgorithm.SHA256) == compute_ha1(
        "1001", "acme.example", "s3cret-pass", DigestAlgorithm.SHA256
    )
    assert store.credentials("1001") == ext
    assert store.credentials("9999") is None
    store.close()
    assert b"s3cret-pass" not in (tmp_path / "acme.db").read_bytes()


def test_extension_validation(store: TenantStore) -> None:
    with pytest.raises(StoreError, match="extension '1' is invalid"):
        store.add_extension("1", "secret1", "r")
    with pytest.raises(StoreError, match="extension '10a' is invalid"):
        store.add_extension("10a", "secret1", "r")
    with pytest.raises(StoreError, match="extension '1234567890123456' is invalid"):
        store.add_extension("1234567890123456", "secret1", "r")
    with pytest.raises(StoreError, match="password is too short"):
        store.add_extension("1001", "12345", "r")
    store.add_extension("1001", "secret1", "r")
    with pytest.raises(StoreError, match="extension 1001 already exists in tenant acme"):
        store.add_extension("1001", "secret2", "r")


def test_extensions_listed_in_numeric_order(store: TenantStore) -> None:
    for ext in ("1002", "99", "1001"):
        store.add_extension(ext, "secret1", "acme.example")
    assert [e.extension for e in store.list_extensions()] == ["99", "1001", "1002"]
    assert set(store.all_extensions()) == {"99", "1001", "1002"}


def test_cache_reload_signal(store: TenantStore, tmp_path: Path) -> None:
    version = store.data_version()
    with TenantStore(tmp_path / "acme.db", tenant="acme") as cli:
        cli.add_extension("1005", "secret1", "acme.example")
    assert store.data_version() != version
    assert "1005" in store.all_extensions()


def test_bindings_survive_reopen_until_expiry(tmp_path: Path) -> None:
    path = tmp_path / "acme.db"
    with TenantStore(path) as store:
        store.add_extension("1001", "secret1", "acme.example")
        store.save_binding(_binding("sip:a@192.0.2.5", expires_at=1500.0))
        store.save_binding(_binding("sip:b@192.0.2.6", expires_at=3000.0))
        # A refresh of the same contact replaces the row.
        store.save_binding(_binding("sip:b@192.0.2.6", expires_at=3600.0))
    with TenantStore(path) as store:
        assert store.binding_counts(1000.0) == {"1001": 2}
        loaded = store.load_bindings(now_unix=2000.0)
        assert [(b.contact_uri, b.expires_at) for b in loaded] == [("sip:b@192.0.2.6", 3600.0)]
        assert loaded[0].user_agent == "baresip"
    with TenantStore(path) as store:
        # The expired binding was purged by the previous load.
        assert store.binding_counts(0.0) == {"1001": 1}
        assert store.delete_binding("1001", "sip:b@192.0.2.6").result(10) == 1
        assert store.load_bindings(0.0) == []


def test_delete_all_bindings_of_extension(store: TenantStore) -> None:
    store.add_extension("1001", "secret1", "acme.example")
    store.save_binding(_binding("sip:a@x"))
    store.save_binding(_binding("sip:b@x"))
    assert store.delete_binding("1001").result(10) == 2


def test_binding_for_unknown_extension_fails_future(store: TenantStore) -> None:
    fut = store.save_binding(_binding())
    with pytest.raises(Exception, match="FOREIGN KEY"):
        fut.result(10)


def test_cdr_round_trip_and_since(store: TenantStore) -> None:
    answered = _cdr("c1", T0, from_display="Ada", recording_path="recordings/c1.wav")
    busy = _cdr(
        "c2",
        T0 + timedelta(hours=1),
        answer=None,
        disposition=Disposition.BUSY,
        hangup_side=HangupSide.CALLEE,
        sip_cause=486,
    )
    ids = [store.insert_cdr(answered).result(10), store.insert_cdr(busy).result(10)]
    assert ids[0] < ids[1]
    records = store.export_cdrs()
    assert records == [answered, busy]
    assert records[0].id == ids[0]
    assert records[0].billable_seconds == 25
    assert records[1].billable_seconds == 0
    assert records[1].duration == 30.0
    assert store.export_cdrs(since=T0 + timedelta(minutes=30)) == [busy]
    assert store.export_cdrs(until=T0 + timedelta(minutes=30)) == [answered]
    row = store.db.query(
        "SELECT duration, billable_seconds, disposition FROM cdrs WHERE id = ?", (ids[0],)
    )[0]
    assert tuple(row) == (30.0, 25, "answered")
    with pytest.raises(ValueError, match="naive"):
        store.export_cdrs(since=datetime(2024, 1, 1))


def test_cdr_of_other_tenant_refused(store: TenantStore) -> None:
    fut = store.insert_cdr(_cdr("c9", T0, tenant="other"))
    with pytest.raises(StoreError, match="tenant 'other' sent to tenant 'acme'"):
        fut.result(1)
    assert store.export_cdrs() == []
