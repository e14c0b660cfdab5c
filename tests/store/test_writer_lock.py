"""SQLite write transactions of one process queue on a Python lock (store.engine._writer_lock)
instead of polling SQLite's busy handler, which sleeps up to 100 ms between tries."""

from __future__ import annotations

import threading

from sqlalchemy import text

from store.engine import get_engine, session_scope


def test_a_second_writer_waits_for_the_first_and_goes_in_when_it_commits(sqlite_url):
    engine = get_engine(sqlite_url)
    inside, release, order = threading.Event(), threading.Event(), []

    def first() -> None:
        with session_scope(engine) as session:
            session.execute(text("CREATE TABLE IF NOT EXISTS probe (n INTEGER)"))
            session.execute(text("INSERT INTO probe VALUES (1)"))
            inside.set()
            release.wait(30)
            order.append("first commits")

    def second() -> None:
        inside.wait(30)
        with session_scope(engine) as session:
            order.append("second in")
            session.execute(text("INSERT INTO probe VALUES (2)"))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    inside.wait(30)
    # The second writer is blocked on the lock (not inside SQLite) while the first holds it.
    threads[1].join(0.2)
    assert threads[1].is_alive() and order == []
    release.set()
    for t in threads:
        t.join(30)
    assert order == ["first commits", "second in"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM probe ORDER BY n")).scalars().all() == [1, 2]


def test_a_writer_may_open_another_scope_inside_its_own(sqlite_url):
    """Re-entrant: a helper that opens its own transaction inside a caller's does not wait
    for itself."""
    engine = get_engine(sqlite_url)
    with session_scope(engine) as outer:
        outer.execute(text("CREATE TABLE IF NOT EXISTS probe (n INTEGER)"))
    with session_scope(engine) as outer:
        outer.execute(text("INSERT INTO probe VALUES (1)"))
        outer.commit()
        with session_scope(engine) as inner:
            inner.execute(text("INSERT INTO probe VALUES (2)"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM probe")).scalar() == 2
