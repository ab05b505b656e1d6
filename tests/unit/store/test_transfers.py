"""Transfers stored beside the call records (minicc.store.transfers), in a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from minicc.events import CallTransferred
from minicc.store.tenant import TenantStore
from minicc.store.transfers import record_transfer, transfers_by_call


def _event(call_id: str, status: int, destination: str) -> CallTransferred:
    return CallTransferred(
        tenant="acme",
        call_id=f"1/{call_id}",
        sip_call_id=call_id,
        kind="blind",
        by="2002",
        target=destination.split(":")[1],
        status=status,
        queue="alpha",
        destination=destination,
    )


def test_transfers_are_summarised_per_call(tmp_path: Path) -> None:
    store = TenantStore(tmp_path / "acme.db", tenant="acme")
    try:
        assert transfers_by_call(store.db, ["a@x"]) == {}  # nothing stored yet: no table
        record_transfer(store.db, _event("a@x", 403, "ext:+4930"), 10.0).result(timeout=5)
        row = record_transfer(store.db, _event("a@x", 200, "queue:beta"), 11.0).result(timeout=5)
        assert row > 0
        record_transfer(store.db, _event("b@x", 200, "ext:2003"), 12.0).result(timeout=5)
        assert transfers_by_call(store.db, ["a@x", "c@x"]) == {
            "a@x": "blind 2002->ext:+4930 403; blind 2002->queue:beta 200"
        }
        assert transfers_by_call(store.db, []) == {}
    finally:
        store.close()
    reopened = TenantStore(tmp_path / "acme.db", tenant="acme")  # survives a restart
    try:
        assert transfers_by_call(reopened.db, ["b@x"]) == {"b@x": "blind 2002->ext:2003 200"}
    finally:
        reopened.close()
