"""The Database writer thread, readers and migrations, on real files under tmp_path."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import Future
from pathlib import Path

import pytest

from minicc.store.database import Database, StoreError, split_sql

SCHEMA = "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE);"


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(tmp_path / "t.db", [SCHEMA])
    yield database
    database.close()


def _insert(value: str):
    return lambda conn: conn.execute("INSERT INTO t (v) VALUES (?)", (value,)).lastrowid


def _values(db: Database) -> list[str]:
    return [row["v"] for row in db.query("SELECT v FROM t ORDER BY id")]


class _Blocker:
    """A write that holds the writer thread until released, so a test can queue work
    behind it deterministically, and that traces every statement the writer runs."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.statements: list[str] = []

    def __call__(self, conn: sqlite3.Connection) -> None:
        conn.set_trace_callback(self.statements.append)
        self.started.set()
        assert self.release.wait(10)


def test_wal_and_pragmas(db: Database) -> None:
    assert db.query("PRAGMA journal_mode")[0][0] == "wal"
    assert db.query("PRAGMA foreign_keys")[0][0] == 1
    assert db.query("PRAGMA busy_timeout")[0][0] == 5000
    assert db.write(lambda conn: conn.execute("PRAGMA foreign_keys").fetchone()[0]) == 1


def test_writes_run_in_submission_order(db: Database) -> None:
    futures = [db.submit(_insert(f"v{i:03d}")) for i in range(300)]
    ids = [f.result(10) for f in futures]
    assert ids == sorted(ids)
    assert _values(db) == [f"v{i:03d}" for i in range(300)]


def test_waiting_writes_share_one_transaction(db: Database) -> None:
    blocker = _Blocker()
    first = db.submit(blocker)
    assert blocker.started.wait(10)
    queued = [db.submit(_insert(f"b{i}")) for i in range(5)]
    blocker.release.set()
    first.result(10)
    for fut in queued:
        fut.result(10)
    after_first = blocker.statements[blocker.statements.index("COMMIT") + 1 :]
    assert after_first.count("BEGIN IMMEDIATE") == 1
    assert after_first.count("COMMIT") == 1
    assert after_first.count("SAVEPOINT write") == 5


def test_failing_write_is_rolled_back_alone(db: Database) -> None:
    blocker = _Blocker()
    db.submit(blocker)
    assert blocker.started.wait(10)

    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (v) VALUES ('partial')")
        raise RuntimeError("boom")

    before = db.submit(_insert("before"))
    failing = db.submit(half_then_fail)
    duplicate = db.submit(_insert("before"))  # UNIQUE violation
    after = db.submit(_insert("after"))
    blocker.release.set()
    assert before.result(10) and after.result(10)
    with pytest.raises(RuntimeError, match="boom"):
        failing.result(10)
    with pytest.raises(sqlite3.IntegrityError):
        duplicate.result(10)
    assert _values(db) == ["before", "after"]
    # The thread is still alive and serving.
    assert db.write(_insert("later"))
    assert _values(db)[-1] == "later"


def test_result_is_published_only_after_commit(db: Database, tmp_path: Path) -> None:
    with Database(tmp_path / "t.db") as other:
        fut = db.submit(_insert("x"))
        fut.result(10)
        # Another connection sees it the moment the future resolves.
        assert [r[0] for r in other.query("SELECT v FROM t")] == ["x"]


def test_close_drains_queue(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = Database(path, [SCHEMA])
    futures = [db.submit(_insert(f"d{i}")) for i in range(100)]
    db.close()
    assert all(f.done() and f.exception() is None for f in futures)
    with Database(path, [SCHEMA]) as again:
        assert len(_values(again)) == 100


def test_use_after_close_fails_cleanly(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.db", [SCHEMA])
    db.close()
    db.close()  # idempotent
    fut = db.submit(_insert("late"))
    with pytest.raises(StoreError, match="closed"):
        fut.result(1)
    with pytest.raises(StoreError, match="closed"):
        db.query("SELECT 1")
    with pytest.raises(StoreError, match="closed"):
        db.data_version()


def test_full_queue_fails_fast(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.db", [SCHEMA], queue_size=1)
    blocker = _Blocker()
    db.submit(blocker)
    assert blocker.started.wait(10)
    waiting = db.submit(_insert("a"))
    overflow = db.submit(_insert("b"))
    with pytest.raises(StoreError, match="full"):
        overflow.result(1)
    blocker.release.set()
    assert waiting.result(10)
    db.close()


def test_cancelled_write_is_skipped(db: Database) -> None:
    blocker = _Blocker()
    db.submit(blocker)
    assert blocker.started.wait(10)
    cancelled = db.submit(_insert("never"))
    assert cancelled.cancel()
    kept = db.submit(_insert("kept"))
    blocker.release.set()
    kept.result(10)
    assert _values(db) == ["kept"]


def test_write_from_writer_thread_refused(db: Database) -> None:
    def nested(conn: sqlite3.Connection) -> None:
        db.write(_insert("inner"))

    with pytest.raises(StoreError, match="deadlock"):
        db.write(nested)


def test_reads_run_on_per_thread_connections(db: Database) -> None:
    db.write(_insert("r"))
    seen: list[object] = []

    def reader() -> None:
        seen.append(db.read(lambda conn: (id(conn), conn.execute("SELECT v FROM t").fetchall())))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    main_conn = db.read(id)
    conn_ids = {item[0] for item in seen} | {main_conn}
    assert len(conn_ids) == 4
    assert all(item[1][0]["v"] == "r" for item in seen)


def test_readers_cannot_write(db: Database) -> None:
    with pytest.raises(sqlite3.OperationalError):
        db.read(lambda conn: conn.execute("INSERT INTO t (v) VALUES ('no')"))


def test_data_version_tracks_other_connections(db: Database, tmp_path: Path) -> None:
    v0 = db.data_version()
    assert db.data_version() == v0
    db.write(_insert("own"))  # our writer is another connection than the version reader
    v1 = db.data_version()
    assert v1 != v0
    with Database(tmp_path / "t.db") as cli:  # as the CLI would, from another process
        cli.write(_insert("cli"))
    v2 = db.data_version()
    assert v2 != v1
    # Comparable from any thread: the same connection answers.
    out: list[int] = []
    th = threading.Thread(target=lambda: out.append(db.data_version()))
    th.start()
    th.join()
    assert out == [v2]


def test_migrations_track_user_version(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    calls: list[int] = []

    def add_column(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("ALTER TABLE t ADD COLUMN extra TEXT")

    with Database(path, [SCHEMA]) as db:
        assert db.user_version() == 1
        db.write(_insert("old"))
    with Database(path, [SCHEMA, add_column]) as db:
        assert db.user_version() == 2
        assert db.query("SELECT v, extra FROM t")[0]["v"] == "old"
    with Database(path, [SCHEMA, add_column]) as db:  # nothing left to do
        assert db.user_version() == 2
    assert calls == [1]


def test_failed_migration_rolls_back_and_reports(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    broken = "CREATE TABLE u (x INTEGER); INSERT INTO nowhere VALUES (1);"
    with pytest.raises(StoreError, match=r"migration 2 of .*m\.db failed: no such table"):
        Database(path, [SCHEMA, broken])
    with Database(path, [SCHEMA]) as db:
        assert db.user_version() == 1
        tables = {r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "u" not in tables


def test_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open database"):
        Database(tmp_path / "missing-dir" / "x.db", [SCHEMA])


def test_split_sql_respects_strings_and_triggers() -> None:
    script = """
        CREATE TABLE a (x TEXT DEFAULT 'a;b');
        CREATE TRIGGER tr AFTER INSERT ON a BEGIN
            UPDATE a SET x = 'c;d' WHERE rowid = new.rowid;
        END;
        -- a comment; with a semicolon
        INSERT INTO a DEFAULT VALUES;
    """
    statements = split_sql(script)
    assert len(statements) == 3
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    with pytest.raises(StoreError, match="incomplete"):
        split_sql("INSERT INTO b VALUES ('unterminated")


def test_submit_returns_plain_future(db: Database) -> None:
    fut = db.submit(lambda conn: 42)
    assert isinstance(fut, Future)
    assert fut.result(10) == 42
