"""Lock conflicts between workers: a write the database rolled back is run again, on the servers' own errors."""

from __future__ import annotations

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

from search import open_storage


@pytest.fixture
def own_mariadb():
    """A MariaDB server of this test's own: its lock wait timeout is set to one second for everyone."""
    from _mariadb import MariaDB, mariadb_bin

    if mariadb_bin() is None:
        pytest.skip("MariaDB (mariadbd, mariadb-install-db) is not installed")
    server = MariaDB()
    try:
        server.sql("SET GLOBAL innodb_lock_wait_timeout = 1")
        yield server
    finally:
        server.remove()


def test_a_write_that_waited_out_another_worker_s_lock_is_run_again(own_mariadb, monkeypatch):
    """A trial told while another transaction holds its row: MariaDB rolls the write back (1205) and it runs again.

    Taken for a lost storage, the worker failed the trial and queued it again: a trial more than asked.
    """
    import threading

    import pymysql

    import search.storages._conflicts as rerun

    url = f"mysql+pymysql://root@localhost/test?unix_socket={own_mariadb.socket}"
    study = optuna.create_study(storage=open_storage(url))
    trial = study.ask()
    conflicts, seen = [], threading.Event()
    real = rerun.is_lock_conflict

    def watched(exc):
        conflicts.append(real(exc))
        seen.set()
        return conflicts[-1]

    monkeypatch.setattr(rerun, "is_lock_conflict", watched)
    holder = pymysql.connect(unix_socket=str(own_mariadb.socket), user="root", database="test")
    with holder.cursor() as cursor:  # another worker's transaction, holding the trial's row
        cursor.execute("BEGIN")
        cursor.execute("SELECT * FROM trials WHERE trial_id = %s FOR UPDATE", (trial._trial_id,))
    releaser = threading.Thread(target=lambda: (seen.wait(60), holder.commit()))
    releaser.start()
    study.tell(trial, 1.0)  # waits a second on the lock, is rolled back, then runs again
    releaser.join()
    holder.close()
    assert conflicts[:1] == [True]
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE]


def test_a_postgresql_deadlock_is_a_lock_conflict_and_a_lost_connection_is_not(own_storage):
    """The classification on the server's own errors: a real deadlock between two sessions (40P01)."""
    import threading

    import psycopg2

    from search._errors import is_lock_conflict

    url = own_storage("postgresql")
    dsn = url.replace("postgresql+psycopg2://", "postgresql://")
    first, second = psycopg2.connect(dsn), psycopg2.connect(dsn)
    with first.cursor() as c:
        c.execute("CREATE TABLE r (id int primary key); INSERT INTO r VALUES (1), (2)")
    first.commit()
    for conn, row in ((first, 1), (second, 2)):
        conn.cursor().execute("SELECT * FROM r WHERE id = %s FOR UPDATE", (row,))
    errors = []

    def lock(conn, row):
        try:
            conn.cursor().execute("SELECT * FROM r WHERE id = %s FOR UPDATE", (row,))
        except psycopg2.Error as exc:
            errors.append(exc)
        conn.rollback()

    threads = [threading.Thread(target=lock, args=(first, 2)), threading.Thread(target=lock, args=(second, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first.close(), second.close()
    assert len(errors) == 1 and is_lock_conflict(errors[0])
    assert not is_lock_conflict(
        sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    )
