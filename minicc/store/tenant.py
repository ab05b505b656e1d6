"""One tenant's own database: extensions, registrar bindings and call-detail records.

Writes the switch makes while calls are running (bindings, CDRs) are queued with
``Database.submit`` and return a future nobody needs to await: the call path never waits on
SQLite. Administrative writes (``add_extension``) block, which is what the CLI wants.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path

from minicc.store.database import Database, Migration, StoreError
from minicc.switch.sip.auth import DigestAlgorithm, compute_ha1
from minicc.tenants.models import Binding, CallRecord, Disposition, Extension, HangupSide

logger = logging.getLogger(__name__)

MIGRATIONS: tuple[Migration, ...] = (
    """
    CREATE TABLE extensions (
        extension TEXT PRIMARY KEY,
        name TEXT,
        -- HA1 per digest algorithm instead of the password (RFC 7616 §3.4.2); realm is
        -- kept to notice a tenant whose domain changed after the HA1 was computed.
        ha1_md5 TEXT NOT NULL,
        ha1_sha256 TEXT NOT NULL,
        realm TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE registrations (
        extension TEXT NOT NULL REFERENCES extensions(extension) ON DELETE CASCADE,
        contact_uri TEXT NOT NULL,
        expires_at REAL NOT NULL,
        call_id TEXT NOT NULL,
        cseq INTEGER NOT NULL,
        transport TEXT NOT NULL,
        source_host TEXT NOT NULL,
        source_port INTEGER NOT NULL,
        user_agent TEXT,
        PRIMARY KEY (extension, contact_uri)
    );
    CREATE INDEX registrations_expires ON registrations(expires_at);
    CREATE TABLE cdrs (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        call_id TEXT NOT NULL,
        from_display TEXT,
        from_user TEXT NOT NULL,
        to_user TEXT NOT NULL,
        -- unix seconds (UTC): compare and sum cheaply in SQL reports
        start REAL NOT NULL,
        answer REAL,
        "end" REAL NOT NULL,
        duration REAL NOT NULL,
        billable_seconds INTEGER NOT NULL,
        disposition TEXT NOT NULL
            CHECK (disposition IN ('answered', 'busy', 'no-answer', 'cancelled', 'failed')),
        hangup_side TEXT NOT NULL CHECK (hangup_side IN ('caller', 'callee', 'system')),
        sip_cause INTEGER,
        recording_path TEXT
    );
    CREATE INDEX cdrs_start ON cdrs(start);
    CREATE INDEX cdrs_call_id ON cdrs(call_id);
    """,
    # 2: the call center (issue 3): queues, members, numbers, IVR flows, agent states, VIPs,
    # callbacks, dispositions, settings and the engine's latest statistics snapshot. Read
    # and written through minicc.store.callcenter.CallCenterStore.
    """
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE queues (
        name TEXT PRIMARY KEY,
        -- QueueConfig fields (all but the name) as JSON: new fields need no migration.
        config TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE queue_members (
        queue TEXT NOT NULL REFERENCES queues(name) ON DELETE CASCADE,
        extension TEXT NOT NULL REFERENCES extensions(extension) ON DELETE CASCADE,
        skills TEXT NOT NULL DEFAULT '{}',
        penalty INTEGER NOT NULL DEFAULT 0 CHECK (penalty >= 0),
        PRIMARY KEY (queue, extension)
    );
    CREATE INDEX queue_members_extension ON queue_members(extension);
    CREATE TABLE numbers (
        number TEXT PRIMARY KEY,
        target TEXT NOT NULL
            CHECK (target GLOB 'queue:?*' OR target GLOB 'ivr:?*' OR target GLOB 'ext:?*')
    );
    CREATE TABLE ivr_flows (
        name TEXT PRIMARY KEY,
        toml TEXT NOT NULL,
        origin TEXT NOT NULL,
        loaded_at TEXT NOT NULL
    );
    CREATE TABLE agent_states (
        extension TEXT PRIMARY KEY REFERENCES extensions(extension) ON DELETE CASCADE,
        state TEXT NOT NULL CHECK (state IN ('available', 'paused', 'logged-out')),
        reason TEXT,
        changed_at TEXT NOT NULL
    );
    CREATE TABLE vip_numbers (
        number TEXT PRIMARY KEY,
        note TEXT
    );
    CREATE TABLE callbacks (
        id INTEGER PRIMARY KEY,
        -- No foreign key: finished callbacks stay as history after their queue is gone.
        queue TEXT NOT NULL,
        number TEXT NOT NULL,
        name TEXT,
        joined_at REAL NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
        result TEXT,
        updated_at REAL NOT NULL
    );
    CREATE INDEX callbacks_status ON callbacks(status, joined_at);
    CREATE TABLE dispositions (
        code TEXT PRIMARY KEY,
        label TEXT NOT NULL
    );
    CREATE TABLE queue_stats (
        -- One row: the engine's latest snapshot, replaced every few seconds.
        id INTEGER PRIMARY KEY CHECK (id = 1),
        taken_at REAL NOT NULL,
        data TEXT NOT NULL
    );
    """,
    # 3: callback ids are text the queue engine makes itself, so storing a callback never
    # holds the event loop waiting for a row id. Earlier integer ids become their text.
    """
    CREATE TABLE callbacks_text_id (
        id TEXT PRIMARY KEY,
        queue TEXT NOT NULL,
        number TEXT NOT NULL,
        name TEXT,
        joined_at REAL NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
        result TEXT,
        updated_at REAL NOT NULL
    );
    INSERT INTO callbacks_text_id
        SELECT CAST(id AS TEXT), queue, number, name, joined_at, priority, attempts, status,
               result, updated_at
        FROM callbacks ORDER BY id;
    DROP TABLE callbacks;
    ALTER TABLE callbacks_text_id RENAME TO callbacks;
    CREATE INDEX callbacks_status ON callbacks(status, joined_at);
    """,
    # 4: voicemail messages and the agents' wrap-up dispositions of calls (issue 3 §6-7),
    # read and written through minicc.store.voicemail and minicc.store.dispositions.
    """
    CREATE TABLE voicemails (
        id INTEGER PRIMARY KEY,
        box TEXT NOT NULL,
        caller TEXT NOT NULL,
        caller_name TEXT,
        -- The caller leg's SIP Call-ID, as in cdrs.call_id, and minicc's own call key.
        call_id TEXT NOT NULL,
        call_key TEXT NOT NULL,
        left_at REAL NOT NULL,
        duration REAL NOT NULL,
        -- The WAV, relative to the data folder (like cdrs.recording_path).
        path TEXT NOT NULL,
        heard INTEGER NOT NULL DEFAULT 0 CHECK (heard IN (0, 1))
    );
    CREATE INDEX voicemails_box ON voicemails(box, left_at);
    CREATE TABLE call_dispositions (
        call_key TEXT PRIMARY KEY,
        -- NULL for a callback (its call record has the switch's own Call-ID).
        call_id TEXT,
        agent TEXT NOT NULL,
        queue TEXT NOT NULL,
        code TEXT NOT NULL,
        note TEXT,
        set_at REAL NOT NULL
    );
    CREATE INDEX call_dispositions_call_id ON call_dispositions(call_id);
    """,
)

_EXTENSION_RE = re.compile(r"^[0-9]{2,15}$")
MIN_PASSWORD_LENGTH = 6


def validate_extension(extension: str) -> str:
    """Return ``extension`` if it is 2-15 digits.

    Raises:
        StoreError: naming the field and the rule.
    """
    if not _EXTENSION_RE.fullmatch(extension):
        raise StoreError(f"extension {extension!r} is invalid: use 2 to 15 digits, e.g. 1005")
    return extension


def validate_password(password: str) -> str:
    """Return ``password`` if it is long enough to be worth having.

    Raises:
        StoreError: naming the field and the rule (never echoing the password).
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StoreError(f"password is too short: use at least {MIN_PASSWORD_LENGTH} characters")
    return password


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _row_to_cdr(row: sqlite3.Row) -> CallRecord:
    start = _dt(row["start"])
    end = _dt(row["end"])
    assert start is not None and end is not None  # NOT NULL columns
    return CallRecord(
        id=row["id"],
        tenant=row["tenant"],
        call_id=row["call_id"],
        from_display=row["from_display"],
        from_user=row["from_user"],
        to_user=row["to_user"],
        start=start,
        answer=_dt(row["answer"]),
        end=end,
        disposition=Disposition(row["disposition"]),
        hangup_side=HangupSide(row["hangup_side"]),
        sip_cause=row["sip_cause"],
        recording_path=row["recording_path"],
    )


def _row_to_extension(row: sqlite3.Row) -> Extension:
    return Extension(
        extension=row["extension"],
        name=row["name"],
        realm=row["realm"],
        ha1_md5=row["ha1_md5"],
        ha1_sha256=row["ha1_sha256"],
        created_at=datetime.fromisoformat(row["created_at"]),
    )


def _row_to_binding(row: sqlite3.Row) -> Binding:
    return Binding(
        extension=row["extension"],
        contact_uri=row["contact_uri"],
        expires_at=row["expires_at"],
        call_id=row["call_id"],
        cseq=row["cseq"],
        transport=row["transport"],
        source_host=row["source_host"],
        source_port=row["source_port"],
        user_agent=row["user_agent"],
    )


class TenantStore:
    """The database file of one tenant.

    Args:
        path: ``<data_dir>/tenants/<name>.db`` (see ``ControlStore.tenant_path``).
        tenant: the tenant's name, for messages.

    Raises:
        StoreError: the file cannot be opened or migrated.
    """

    def __init__(self, path: Path | str, *, tenant: str | None = None) -> None:
        self.path = Path(path)
        self.tenant = tenant or self.path.stem
        self.db = Database(self.path, MIGRATIONS)

    def close(self) -> None:
        """Write everything queued (CDRs, bindings) and close."""
        self.db.close()

    def __enter__(self) -> TenantStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def data_version(self) -> int:
        """Changes whenever another connection commits (an extension added by the CLI...)."""
        return self.db.data_version()

    # -- extensions ------------------------------------------------------------------------

    def add_extension(
        self, extension: str, password: str, realm: str, name: str | None = None
    ) -> Extension:
        """Add a SIP login, storing HA1 for MD5 and SHA-256 under ``realm``.

        Args:
            extension: 2-15 digits.
            password: at least 6 characters; only its HA1 values are stored.
            realm: the tenant's SIP domain, which the server uses as digest realm.
            name: display name.

        Raises:
            StoreError: invalid field or extension already present.
        """
        validate_extension(extension)
        validate_password(password)
        record = Extension(
            extension=extension,
            name=name or None,
            realm=realm,
            ha1_md5=compute_ha1(extension, realm, password, DigestAlgorithm.MD5),
            ha1_sha256=compute_ha1(extension, realm, password, DigestAlgorithm.SHA256),
            created_at=datetime.now(UTC).replace(microsecond=0),
        )

        def insert(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO extensions"
                    " (extension, name, ha1_md5, ha1_sha256, realm, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record.extension,
                        record.name,
                        record.ha1_md5,
                        record.ha1_sha256,
                        record.realm,
                        record.created_at.isoformat() if record.created_at else None,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(
                    f"extension {extension} already exists in tenant {self.tenant}"
                ) from exc

        self.db.write(insert)
        logger.info("added extension %s to tenant %s", extension, self.tenant)
        return record

    def list_extensions(self) -> list[Extension]:
        """All extensions, in numeric order."""
        rows = self.db.query("SELECT * FROM extensions ORDER BY length(extension), extension")
        return [_row_to_extension(r) for r in rows]

    def credentials(self, extension: str) -> Extension | None:
        """The stored HA1 values of one extension, for digest verification."""
        rows = self.db.query("SELECT * FROM extensions WHERE extension = ?", (extension,))
        return _row_to_extension(rows[0]) if rows else None

    def all_extensions(self) -> dict[str, Extension]:
        """Every extension by number: the server keeps this in memory and reloads it when
        ``data_version()`` changes, so authentication never touches the disk."""
        return {e.extension: e for e in self.list_extensions()}

    # -- registrar bindings ----------------------------------------------------------------

    def save_binding(self, binding: Binding) -> Future[None]:
        """Queue an insert-or-refresh of a binding; never blocks."""

        def upsert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO registrations (extension, contact_uri, expires_at, call_id, cseq,"
                " transport, source_host, source_port, user_agent)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (extension, contact_uri) DO UPDATE SET"
                " expires_at = excluded.expires_at, call_id = excluded.call_id,"
                " cseq = excluded.cseq, transport = excluded.transport,"
                " source_host = excluded.source_host, source_port = excluded.source_port,"
                " user_agent = excluded.user_agent",
                (
                    binding.extension,
                    binding.contact_uri,
                    binding.expires_at,
                    binding.call_id,
                    binding.cseq,
                    binding.transport,
                    binding.source_host,
                    binding.source_port,
                    binding.user_agent,
                ),
            )

        return self.db.submit(upsert)

    def delete_binding(self, extension: str, contact_uri: str | None = None) -> Future[int]:
        """Queue removal of one binding, or of all of an extension's (``Contact: *``,
        RFC 3261 §10.2.2); the future gives the number removed."""
        if contact_uri is None:
            return self.db.submit(
                lambda conn: (
                    conn.execute(
                        "DELETE FROM registrations WHERE extension = ?", (extension,)
                    ).rowcount
                )
            )
        return self.db.submit(
            lambda conn: (
                conn.execute(
                    "DELETE FROM registrations WHERE extension = ? AND contact_uri = ?",
                    (extension, contact_uri),
                ).rowcount
            )
        )

    def load_bindings(self, now_unix: float) -> list[Binding]:
        """Bindings still valid at ``now_unix`` (wall clock); expired rows are purged.

        Called at start-up so a restart keeps phones reachable until their bindings expire.
        """
        rows = self.db.query(
            "SELECT * FROM registrations WHERE expires_at > ? ORDER BY extension, contact_uri",
            (now_unix,),
        )
        self.db.submit(
            lambda conn: (
                conn.execute(
                    "DELETE FROM registrations WHERE expires_at <= ?", (now_unix,)
                ).rowcount
            )
        )
        return [_row_to_binding(r) for r in rows]

    def binding_counts(self, now_unix: float) -> dict[str, int]:
        """Number of unexpired bindings per extension (read-only; for listings)."""
        rows = self.db.query(
            "SELECT extension, count(*) FROM registrations WHERE expires_at > ? GROUP BY extension",
            (now_unix,),
        )
        return {str(r[0]): int(r[1]) for r in rows}

    # -- call-detail records ---------------------------------------------------------------

    def insert_cdr(self, cdr: CallRecord) -> Future[int]:
        """Queue a call-detail record; the future gives its row id. Never blocks."""
        if cdr.tenant != self.tenant:
            # Refusing here keeps one tenant's call out of another tenant's file.
            fut: Future[int] = Future()
            fut.set_exception(
                StoreError(f"CDR of tenant {cdr.tenant!r} sent to tenant {self.tenant!r}")
            )
            logger.error("CDR %s of tenant %s sent to %s", cdr.call_id, cdr.tenant, self.tenant)
            return fut
        values = (
            cdr.tenant,
            cdr.call_id,
            cdr.from_display,
            cdr.from_user,
            cdr.to_user,
            _ts(cdr.start),
            _ts(cdr.answer),
            _ts(cdr.end),
            cdr.duration,
            cdr.billable_seconds,
            cdr.disposition.value,
            cdr.hangup_side.value,
            cdr.sip_cause,
            cdr.recording_path,
        )

        def insert(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO cdrs (tenant, call_id, from_display, from_user, to_user, start,"
                ' answer, "end", duration, billable_seconds, disposition, hangup_side,'
                " sip_cause, recording_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            return int(cur.lastrowid or 0)

        return self.db.submit(insert)

    def calls_with(self, number: str, limit: int = 5) -> list[CallRecord]:
        """The latest calls from or to ``number``, newest first (an agent's screen pop)."""
        rows = self.db.query(
            "SELECT * FROM cdrs WHERE from_user = ? OR to_user = ? ORDER BY start DESC, id DESC"
            " LIMIT ?",
            (number, number, limit),
        )
        return [_row_to_cdr(r) for r in rows]

    def export_cdrs(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[CallRecord]:
        """Call records whose start is in ``[since, until)``, oldest first.

        Raises:
            ValueError: a naive datetime (ambiguous; the caller decides the time zone).
        """
        clauses: list[str] = []
        params: list[float] = []
        for bound, op in ((since, ">="), (until, "<")):
            if bound is None:
                continue
            if bound.tzinfo is None:
                raise ValueError(f"{bound!r} is naive: give it a time zone")
            clauses.append(f"start {op} ?")
            params.append(bound.timestamp())
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.db.query(f"SELECT * FROM cdrs{where} ORDER BY start, id", params)
        return [_row_to_cdr(r) for r in rows]
