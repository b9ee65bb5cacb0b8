"""In process: the helpers both SQLite stores (requests, logs) write with (`emulator.data_files`)."""

from __future__ import annotations

import sqlite3

import pytest

from emulator.data_files import insert_rows, open_database


@pytest.fixture
def db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, size INTEGER)")
    return db


def test_rows_past_what_one_statement_binds_are_all_inserted_in_order(db):
    db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 10)  # three rows of three values per statement
    rows = [(n, f"file-{n}\x00with a NUL", n * 10) for n in range(8)]
    insert_rows(db, "INSERT INTO t (id, name, size)", rows)
    assert db.execute("SELECT id, name, size FROM t ORDER BY rowid").fetchall() == rows


def test_the_conflict_clause_updates_the_rows_already_there(db):
    insert_rows(db, "INSERT INTO t (id, name, size)", [(1, "a", 1), (2, "b", 2)])
    insert_rows(db, "INSERT INTO t (id, name, size)", [(2, "b", 20), (3, "c", 3)],
                "ON CONFLICT (id) DO UPDATE SET size = excluded.size")
    assert db.execute("SELECT id, name, size FROM t ORDER BY id").fetchall() == [(1, "a", 1), (2, "b", 20), (3, "c", 3)]


def test_no_rows_is_no_statement(db):
    insert_rows(db, "INSERT INTO nowhere (id)", [])
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_a_database_is_its_owner_s_alone(tmp_path):
    """Made by SQLite under the usual umask (022), the requests' and logs' databases were readable by every
    user of the machine (0644) in a data folder made by the user (0755): a request's input, for one."""
    made, older = tmp_path / "new.sqlite3", tmp_path / "older.sqlite3"
    sqlite3.connect(older).execute("CREATE TABLE t (x)").connection.close()
    older.chmod(0o644)
    for path in (made, older):
        db = open_database(path, "CREATE TABLE IF NOT EXISTS t (x); INSERT INTO t VALUES (1);", "test rows")
        wal = path.with_name(path.name + "-wal")
        assert wal.exists() and wal.stat().st_mode & 0o777 == 0o600, "SQLite makes its -wal file as the database"
        db.close()
        assert path.stat().st_mode & 0o777 == 0o600, path
