"""One SQLAlchemy engine per database URL, tuned for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import lru_cache
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine


def _prepare_sqlite(url: str) -> dict:
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return {"check_same_thread": False, "timeout": 30}


@lru_cache(maxsize=None)
def get_engine(url: str) -> Engine:
    """Engines are cached per URL: they own connection pools and must be shared."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args=_prepare_sqlite(url))

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


_WRITERS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_WRITERS_GUARD = threading.Lock()


def _writer_lock(engine: Engine) -> threading.RLock:
    """SQLite lets one writer in at a time and makes the others poll: its busy handler sleeps
    1, 2, 5 ... up to 100 ms between tries, so a writer of a busy process (concurrent local
    activities, the notification dispatcher) waits for its next poll long after the lock is
    free. The writers of one process queue on this lock instead and go in the moment it is
    released; other processes still meet SQLite's own lock. PostgreSQL locks rows, so its
    writers need none."""
    with _WRITERS_GUARD:
        lock = _WRITERS.get(engine)
        if lock is None:
            lock = _WRITERS[engine] = threading.RLock()
        return lock


def writing(engine: Engine) -> AbstractContextManager:
    """Held around a write transaction: this process's SQLite writer lock (_writer_lock), or
    nothing on PostgreSQL."""
    return _writer_lock(engine) if engine.dialect.name == "sqlite" else nullcontext()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A transaction: committed on success, rolled back on any error."""
    with writing(engine), Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
