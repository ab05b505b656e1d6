"""One SQLite database file: a single writer thread, per-thread readers, migrations.

The shape follows datasette's ``Database._execute_writes``: exactly one thread owns the write
connection and runs queued functions inside ``BEGIN IMMEDIATE`` transactions, so writers never
fight over the lock inside this process, and callers on the event loop only enqueue work and
get a ``concurrent.futures.Future`` they may ignore. The SIP call path must never wait on
SQLite; ``submit`` never blocks.

Several waiting writes are committed in one transaction (one fsync instead of many), each in
its own SAVEPOINT so a failing write is rolled back alone and the others still commit.

Other processes (the ``minicc`` CLI while the server runs) open the same file; WAL mode lets
their readers and ours proceed during a write, and ``busy_timeout`` makes the rare concurrent
writers wait for each other instead of failing. ``data_version()`` tells a long-lived process
cheaply that someone else committed, so it can reload a cache.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

Migration = str | Callable[[sqlite3.Connection], None]
"""A schema step: a SQL script, or a function given the write connection.

Migration *n* (1-based position in the sequence) brings ``PRAGMA user_version`` from n-1 to
n inside one transaction. A callable must not commit and must not use ``executescript``
(which would commit behind our back).
"""

BUSY_TIMEOUT_MS = 5000
"""How long a connection waits for another process's write lock before failing."""

MAX_BATCH = 100
"""Most queued writes committed together in one transaction."""

DEFAULT_QUEUE_SIZE = 10_000
"""Bound on pending writes; past it ``submit`` fails fast rather than growing memory."""


class StoreError(Exception):
    """A storage operation failed in a way the user can act on; the message says how."""


class _Stop:
    """Queue sentinel asking the writer thread to finish."""


_STOP = _Stop()


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so the sqlite3 module never
    # opens or commits transactions implicitly.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def split_sql(script: str) -> list[str]:
    """Split a SQL script into complete statements.

    ``sqlite3.complete_statement`` understands string literals and trigger bodies, so a ``;``
    inside either does not end a statement. Needed because ``executescript`` in Python 3.11
    commits any open transaction first, which would break one-transaction migrations.
    """
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip(" \t\r\n;"):
        raise StoreError(f"incomplete SQL statement in migration: {buffer.strip()[:60]!r}")
    return statements


class Database:
    """A SQLite file with one writer thread and per-thread read connections.

    Args:
        path: the database file; its folder must exist.
        migrations: schema steps in order; see ``Migration``.
        queue_size: bound on pending writes.

    Raises:
        StoreError: the file cannot be opened or a migration failed. The database is left at
            the last migration that succeeded.
    """

    def __init__(
        self,
        path: Path | str,
        migrations: Sequence[Migration] = (),
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        self.path = Path(path)
        self._migrations = tuple(migrations)
        self._queue: queue.Queue[tuple[Callable[[sqlite3.Connection], Any], Future[Any]] | _Stop]
        self._queue = queue.Queue(maxsize=queue_size)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._close_lock = threading.Lock()
        self._version_conn: sqlite3.Connection | None = None
        self._version_lock = threading.Lock()
        ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run_writer, args=(ready,), name=f"sqlite-writer:{self.path.name}"
        )
        self._thread.daemon = True
        self._thread.start()
        try:
            ready.result()
        except BaseException:
            self._thread.join()
            self._closed = True
            raise

    # -- writer thread ---------------------------------------------------------------------

    def _run_writer(self, ready: Future[None]) -> None:
        try:
            conn = _connect(self.path)
            # WAL is persistent in the file; setting it on every open is cheap and idempotent.
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate(conn)
        except sqlite3.Error as exc:
            ready.set_exception(StoreError(f"cannot open database {self.path}: {exc}"))
            return
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(None)
        try:
            self._serve_writes(conn)
        finally:
            conn.close()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        for version, migration in enumerate(self._migrations, start=1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-read inside the write lock: another process may have migrated meanwhile.
                current = conn.execute("PRAGMA user_version").fetchone()[0]
                if current >= version:
                    conn.execute("COMMIT")
                    continue
                if isinstance(migration, str):
                    for statement in split_sql(migration):
                        conn.execute(statement)
                else:
                    migration(conn)
                conn.execute(f"PRAGMA user_version = {version:d}")
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, StoreError | sqlite3.Error):
                    raise StoreError(f"migration {version} of {self.path} failed: {exc}") from exc
                raise
            logger.info("migrated %s to schema version %d", self.path, version)

    def _serve_writes(self, conn: sqlite3.Connection) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if isinstance(first, _Stop):
                break
            batch = [first]
            # Gather whatever else is already waiting: one COMMIT for all of it.
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _Stop):
                    stopping = True
                    break
                batch.append(item)
            self._run_batch(conn, batch)

    def _run_batch(
        self,
        conn: sqlite3.Connection,
        batch: list[tuple[Callable[[sqlite3.Connection], Any], Future[Any]]],
    ) -> None:
        live = [(fn, fut) for fn, fut in batch if fut.set_running_or_notify_cancel()]
        if not live:
            return
        outcomes: list[tuple[Future[Any], bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, fut in live:
                conn.execute("SAVEPOINT write")
                try:
                    result = fn(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO write")
                    conn.execute("RELEASE write")
                    if isinstance(exc, StoreError):
                        # A refusal the caller reports itself (duplicate name...).
                        logger.debug("write to %s refused: %s", self.path, exc)
                    else:
                        logger.warning(
                            "write to %s failed: %s: %s", self.path, type(exc).__name__, exc
                        )
                        logger.debug("write failure detail", exc_info=True)
                    outcomes.append((fut, False, exc))
                else:
                    conn.execute("RELEASE write")
                    outcomes.append((fut, True, result))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            # BEGIN or COMMIT failed (another process held the lock past busy_timeout, disk
            # full...): nothing of this batch is stored, so every caller hears about it.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            logger.error("write batch to %s failed: %s", self.path, exc)
            error = StoreError(f"write to {self.path} failed: {exc}")
            for _fn, fut in live:
                fut.set_exception(error)
            return
        # Results are published only after COMMIT, so a resolved future means durable data.
        for fut, ok, value in outcomes:
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    # -- public API ------------------------------------------------------------------------

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Queue ``fn(conn)`` to run on the writer thread inside a transaction.

        Never blocks: safe to call from the event loop and to ignore the returned future
        (errors are logged either way). ``fn`` must not commit or roll back.

        Returns:
            A future with ``fn``'s result once committed, or its exception; a ``StoreError``
            when the database is closed or the write queue is full.
        """
        fut: Future[T] = Future()
        # The lock orders this put against close()'s sentinel: nothing lands after it.
        with self._close_lock:
            if self._closed:
                fut.set_exception(StoreError(f"database {self.path} is closed"))
                return fut
            try:
                self._queue.put_nowait((fn, fut))
            except queue.Full:
                logger.error("write queue of %s is full; dropping a write", self.path)
                fut.set_exception(StoreError(f"write queue of {self.path} is full"))
        return fut

    def write(self, fn: Callable[[sqlite3.Connection], T], timeout: float | None = None) -> T:
        """Run ``fn(conn)`` on the writer thread and wait for it (CLI, tests, start-up).

        Raises:
            Whatever ``fn`` raised, or ``StoreError``.
        """
        if threading.current_thread() is self._thread:
            raise StoreError("write() called from the writer thread would deadlock")
        return self.submit(fn).result(timeout)

    def execute_write(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one statement on the writer and wait; returns the affected row count."""
        return self.write(lambda conn: conn.execute(sql, params).rowcount)

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"database {self.path} is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = _connect(self.path)
                # A guard, not a permission: readers must never write behind the writer.
                conn.execute("PRAGMA query_only = ON")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open database {self.path}: {exc}") from exc
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on this thread's read connection in one read transaction.

        Blocking, but WAL readers never wait for writers. From the event loop use it only
        for short look-ups (or wrap in ``asyncio.to_thread``).
        """
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            return fn(conn)
        finally:
            conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """Return all rows of one SELECT."""
        return self.read(lambda conn: conn.execute(sql, params).fetchall())

    def data_version(self) -> int:
        """Return ``PRAGMA data_version`` of one dedicated connection.

        It changes whenever any other connection, in this process or another, commits to
        the file; compare successive values to know when to reload a cache. The value is
        only comparable with earlier values of the *same* connection, so every thread asks
        the same one (under a lock) rather than its own reader: callers may use a thread
        pool (``asyncio.to_thread``) where each call lands on a different thread.
        """
        with self._version_lock:
            if self._closed:
                raise StoreError(f"database {self.path} is closed")
            if self._version_conn is None:
                try:
                    self._version_conn = _connect(self.path)
                except sqlite3.Error as exc:
                    raise StoreError(f"cannot open database {self.path}: {exc}") from exc
            return int(self._version_conn.execute("PRAGMA data_version").fetchone()[0])

    def user_version(self) -> int:
        """Return the schema version (number of migrations applied)."""
        return int(self.query("PRAGMA user_version")[0][0])

    def close(self) -> None:
        """Run every queued write, stop the writer thread and close all connections."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            # A blocking put: the queue may be full, and the writer is draining it.
            self._queue.put(_STOP)
        self._thread.join()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        with self._version_lock:
            if self._version_conn is not None:
                self._version_conn.close()
                self._version_conn = None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
