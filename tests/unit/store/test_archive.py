"""Tenant export, import and delete on real data dirs; archives that must be refused."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from minicc.store.archive import ArchiveError, delete_tenant, export_tenant, import_tenant
from minicc.store.control import ControlStore
from minicc.store.database import StoreError
from minicc.tenants.models import CallRecord, Disposition, HangupSide


def make_tenant(data_dir: Path) -> None:
    with ControlStore(data_dir) as control:
        tenant = control.add_tenant("acme", "acme.test")
        control.add_domain_alias("acme", "sip.acme.test")
        control.set_recording("acme", True)
        with control.open_tenant(tenant) as store:
            store.add_extension("1001", "secret-one", tenant.domain, "Ada")
            start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
            store.insert_cdr(
                CallRecord(
                    tenant="acme",
                    call_id="c1",
                    from_user="1001",
                    to_user="8000",
                    start=start,
                    end=start.replace(minute=5),
                    disposition=Disposition.ANSWERED,
                    hangup_side=HangupSide.CALLER,
                    answer=start,
                )
            ).result(5.0)
    day = data_dir / "recordings" / "acme" / "2026-11-01"
    day.mkdir(parents=True)
    (day / "c1.wav").write_bytes(b"RIFF....WAVE")
    (data_dir / "prompts" / "acme" / "en").mkdir(parents=True)
    (data_dir / "prompts" / "acme" / "en" / "welcome.wav").write_bytes(b"RIFF")


def test_export_then_import_elsewhere_keeps_everything(tmp_path: Path) -> None:
    source, target = tmp_path / "a", tmp_path / "b"
    make_tenant(source)
    with ControlStore(source) as control:
        done = export_tenant(control, "acme.test", tmp_path / "acme.tar.gz")
    assert done.tenant == "acme" and done.files == 2
    with ControlStore(target) as control:
        tenant = import_tenant(control, done.path)
        assert (tenant.name, tenant.domain, tenant.record_calls) == ("acme", "acme.test", True)
        assert tenant.aliases == ("sip.acme.test",)
        with control.open_tenant(tenant) as store:
            assert [e.extension for e in store.list_extensions()] == ["1001"]
            assert [c.call_id for c in store.export_cdrs()] == ["c1"]
    assert (
        target / "recordings" / "acme" / "2026-11-01" / "c1.wav"
    ).read_bytes() == b"RIFF....WAVE"
    assert (target / "prompts" / "acme" / "en" / "welcome.wav").exists()


def test_import_under_a_new_name_renames_the_records(tmp_path: Path) -> None:
    make_tenant(tmp_path)
    with ControlStore(tmp_path) as control:
        done = export_tenant(control, "acme", tmp_path / "acme.tar.gz")
        with pytest.raises(ArchiveError, match="already exists here"):
            import_tenant(control, done.path)
        with pytest.raises(StoreError, match="already belongs to tenant 'acme'"):
            import_tenant(control, done.path, name="acme2")  # same domain: refused
        copy = import_tenant(control, done.path, name="acme2", domain="acme2.test")
        assert copy.aliases == ()  # the old aliases would point at the old tenant
        with control.open_tenant(copy) as store:
            assert {c.tenant for c in store.export_cdrs()} == {"acme2"}
        # The failed attempt above left nothing behind.
        assert [t.name for t in control.list_tenants()] == ["acme", "acme2"]


def _archive(path: Path, members: dict[str, bytes], manifest: object | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        files = dict(members)
        if manifest is not None:
            files["manifest.json"] = json.dumps(manifest).encode()
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize(
    ("members", "manifest", "message"),
    [
        ({"tenant.db": b""}, None, "manifest.json or tenant.db is missing"),
        ({"tenant.db": b""}, {"format": "other"}, "unknown manifest format"),
        ({"tenant.db": b""}, {"format": "minicc-tenant", "version": 9}, "version 9"),
        (
            {"tenant.db": b"", "../../etc/evil": b"x"},
            {"format": "minicc-tenant", "version": 1, "tenant": {"name": "x", "domain": "x.test"}},
            "unsafe path",
        ),
    ],
)
def test_bad_archives_are_refused_and_leave_nothing(
    tmp_path: Path, members: dict[str, bytes], manifest: object, message: str
) -> None:
    archive = _archive(tmp_path / "bad.tar.gz", members, manifest)
    with ControlStore(tmp_path / "data") as control:
        with pytest.raises(ArchiveError, match=message):
            import_tenant(control, archive)
        assert control.list_tenants() == []
    assert not (tmp_path / "etc").exists()


def test_delete_keeps_a_retention_copy_unless_told_not_to(tmp_path: Path) -> None:
    make_tenant(tmp_path)
    with ControlStore(tmp_path) as control:
        kept = delete_tenant(control, "acme")
        assert kept is not None and kept.parent == tmp_path / "deleted"
        assert control.get_tenant("acme") is None
        assert control.get_tenant("sip.acme.test") is None
        assert not (tmp_path / "tenants" / "acme.db").exists()
        assert not (tmp_path / "recordings" / "acme").exists()
        # The copy is a full export: the tenant comes back from it.
        assert import_tenant(control, kept).name == "acme"
        assert delete_tenant(control, "acme", keep_archive=False) is None
        with pytest.raises(StoreError, match="no tenant named 'acme'"):
            delete_tenant(control, "acme")
