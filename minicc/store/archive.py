"""Moving a tenant as one thing: export to an archive, import it elsewhere, delete it.

A tenant is its row in the control database (name, domains, settings) plus files that are
its alone: its database (``tenants/<name>.db``), its recordings (``recordings/<name>/``)
and its uploaded prompts (``prompts/<name>/``). An export is a gzipped tar of those files
with a ``manifest.json`` that describes the control row; the database is copied with
SQLite's online backup, so an export taken while the server runs is consistent.

Import reverses it on another data dir (optionally under a new name and domain), and
refuses anything that would overwrite: an existing tenant or domain, or an archive whose
members would land outside the tenant's folders (``../`` or absolute paths). Deleting keeps
an export in ``deleted/`` unless told not to: a retention copy for the day someone asks.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from minicc import __version__
from minicc.store.callcenter import tenant_prompts_dir
from minicc.store.control import RECORDINGS_DIR, ControlStore, normalize_domain
from minicc.store.database import StoreError
from minicc.tenants.models import Tenant

__all__ = ["ArchiveError", "Exported", "delete_tenant", "export_tenant", "import_tenant"]

FORMAT = "minicc-tenant"
VERSION = 1
DELETED_DIR = "deleted"
_MANIFEST = "manifest.json"
_DB = "tenant.db"


class ArchiveError(StoreError):
    """The archive is not a minicc tenant export, or would clash with what exists."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Exported:
    path: Path
    tenant: str
    files: int
    """Recordings and prompts included (the database not counted)."""
    size: int
    """Bytes of the archive."""


def _folders(data_dir: Path, name: str) -> dict[str, Path]:
    """The tenant's own folders, by their name inside the archive."""
    return {
        "recordings": data_dir / RECORDINGS_DIR / name,
        "prompts": tenant_prompts_dir(data_dir, name),
    }


def export_tenant(control: ControlStore, name: str, dest: Path) -> Exported:
    """Write tenant ``name`` (by name or domain) to ``dest`` (a ``.tar.gz``).

    Raises:
        StoreError: no such tenant, or ``dest`` cannot be written.
    """
    tenant = control.get_tenant(name)
    if tenant is None:
        raise StoreError(f"no tenant named {name!r}: see 'minicc tenant list' for the names")
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "minicc": __version__,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tenant": {
            "name": tenant.name,
            "domain": tenant.domain,
            "aliases": list(tenant.aliases),
            "record_calls": tenant.record_calls,
            "status": tenant.status.value,
            "created_at": tenant.created_at.isoformat(),
        },
    }
    files = 0
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp, tarfile.open(dest, "w:gz") as tar:
            copy = Path(tmp) / _DB
            _backup(control.tenant_path(tenant), copy)
            _add_bytes(tar, _MANIFEST, json.dumps(manifest, indent=1).encode())
            tar.add(copy, arcname=_DB)
            for arcname, folder in _folders(control.data_dir, tenant.name).items():
                if folder.is_dir():
                    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                        tar.add(path, arcname=f"{arcname}/{path.relative_to(folder).as_posix()}")
                        files += 1
    except (OSError, sqlite3.Error, tarfile.TarError) as exc:
        dest.unlink(missing_ok=True)
        raise StoreError(f"cannot write {dest}: {exc}") from exc
    return Exported(path=dest, tenant=tenant.name, files=files, size=dest.stat().st_size)


def import_tenant(
    control: ControlStore,
    archive: Path,
    *,
    name: str | None = None,
    domain: str | None = None,
) -> Tenant:
    """Create a tenant from an export; ``name``/``domain`` rename it on the way in.

    The tenant's aliases come along unless a new domain is given (they would point at the
    old address). Nothing is left behind when anything fails.

    Raises:
        ArchiveError: not an export of this format, unsafe member paths, or the name or
            domain is already taken here.
        StoreError: the archive cannot be read.
    """
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {m.name: m for m in tar.getmembers()}
            manifest = _manifest(tar, members)
            for member in members.values():
                _check_member(member)
            meta = manifest["tenant"]
            new_name = name or str(meta["name"])
            new_domain = normalize_domain(domain or str(meta["domain"]))
            if control.get_tenant(new_name) is not None:
                raise ArchiveError(
                    f"tenant {new_name!r} already exists here: import with --name NEW_NAME"
                )
            folders = _folders(control.data_dir, new_name)
            for folder in folders.values():
                if folder.exists() and any(folder.iterdir()):
                    raise ArchiveError(f"{folder} already has files: move them away first")
            created = control.add_tenant(new_name, new_domain)
            try:
                db = control.tenant_path(created)
                _extract(tar, members[_DB], db)
                for member in members.values():
                    top, _, rest = member.name.partition("/")
                    if member.isfile() and top in folders and rest:
                        _extract(tar, member, folders[top] / rest)
                if domain is None:
                    for alias in meta.get("aliases", []):
                        control.add_domain_alias(new_name, str(alias))
                control.set_recording(new_name, bool(meta.get("record_calls", False)))
                _rename_inside(db, new_name)
            except BaseException:
                control.delete_tenant(new_name)
                control.tenant_path(created).unlink(missing_ok=True)
                for folder in folders.values():
                    shutil.rmtree(folder, ignore_errors=True)
                raise
    except (OSError, tarfile.TarError, KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, StoreError):
            raise
        raise ArchiveError(f"{archive} is not a readable minicc tenant export: {exc}") from exc
    imported = control.get_tenant(new_name)
    assert imported is not None
    return imported


def delete_tenant(control: ControlStore, name: str, *, keep_archive: bool = True) -> Path | None:
    """Remove tenant ``name`` and its files; returns the retention archive, if kept.

    Raises:
        StoreError: no such tenant, or the retention archive cannot be written (then
            nothing is deleted).
    """
    tenant = control.get_tenant(name)
    if tenant is None:
        raise StoreError(f"no tenant named {name!r}: see 'minicc tenant list' for the names")
    kept: Path | None = None
    if keep_archive:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        kept = control.data_dir / DELETED_DIR / f"{tenant.name}-{stamp}.tar.gz"
        export_tenant(control, tenant.name, kept)
    control.delete_tenant(tenant.name)
    db = control.tenant_path(tenant)
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        path.unlink(missing_ok=True)
    for folder in _folders(control.data_dir, tenant.name).values():
        shutil.rmtree(folder, ignore_errors=True)
    return kept


# ---------------------------------------------------------------------------- helpers


def _backup(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def _manifest(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo]) -> dict[str, object]:
    if _MANIFEST not in members or _DB not in members:
        raise ArchiveError("not a minicc tenant export: manifest.json or tenant.db is missing")
    handle = tar.extractfile(members[_MANIFEST])
    if handle is None:
        raise ArchiveError("not a minicc tenant export: manifest.json is not a file")
    manifest = json.loads(handle.read(1 << 20))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveError("not a minicc tenant export: unknown manifest format")
    if manifest.get("version") != VERSION:
        raise ArchiveError(
            f"export format version {manifest.get('version')!r} is not supported "
            f"(this minicc reads version {VERSION})"
        )
    if not isinstance(manifest.get("tenant"), dict):
        raise ArchiveError("not a minicc tenant export: the manifest has no tenant")
    return manifest


def _check_member(member: tarfile.TarInfo) -> None:
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts:
        raise ArchiveError(f"unsafe path in archive: {member.name!r}")
    if not (member.isfile() or member.isdir()):
        raise ArchiveError(f"unexpected member in archive (links are refused): {member.name!r}")


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    source = tar.extractfile(member)
    if source is None:
        raise ArchiveError(f"{member.name} is not a file")
    target.parent.mkdir(parents=True, exist_ok=True)
    with source, target.open("wb") as out:
        shutil.copyfileobj(source, out)


def _rename_inside(db: Path, name: str) -> None:
    """Records inside the database carry the tenant's name (CDRs): make them the new one."""
    conn = sqlite3.connect(db)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "cdrs" in tables:
            columns = {r[1] for r in conn.execute("PRAGMA table_info(cdrs)")}
            if "tenant" in columns:
                conn.execute("UPDATE cdrs SET tenant = ?", (name,))
        conn.commit()
    finally:
        conn.close()
