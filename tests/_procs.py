"""Helpers for tests that run `search` as real processes, and for storages of their own on the shared servers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import optuna
from optuna.trial import TrialState

TINY = "hidden_units: 16\nepochs: {low: 1, high: 2}\nbatch_size: 64\n"
# About 3-4 s a trial on 2 cores: long enough to be caught mid-trial, short enough to re-run.
LONG = "hidden_units: 128\nepochs: 60\nbatch_size: 64\noptimizer: sgd\n"


def search(tmp_path, *args, popen: dict | None = None, env: dict | None = None):
    """`python -m search ARGS` in ``tmp_path`` (confirmation off unless asked for); Popen when ``popen`` is given."""
    from conftest import quick_run

    command = [sys.executable, "-m", "search", *quick_run([str(a) for a in args])]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    environment.pop("SEARCH_STORAGE", None)
    if popen is not None:
        return subprocess.Popen(
            command, cwd=tmp_path, env=environment, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen
        )
    return subprocess.run(command, cwd=tmp_path, env=environment, text=True, capture_output=True, timeout=300)


def open_study(url, name):
    from search import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(url))


def wait_for(predicate, timeout=60.0, every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


def read_until(stream, text: str) -> str:
    """Lines from ``stream`` up to and including one that contains ``text`` (the event waited on)."""
    seen = []
    for line in stream:
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"the stream ended without {text!r}: {''.join(seen)}")


def trials_in(url, name, state):
    try:
        return open_study(url, name).get_trials(deepcopy=False, states=(state,))
    except KeyError:  # the study does not exist yet
        return []


def running_trial(url, name):
    """A trial under way: RUNNING and past sampling (Optuna's RDB heartbeat starts with the
    objective; a kill in the milliseconds before it is not the fault these tests model)."""
    trials = [t for t in trials_in(url, name, TrialState.RUNNING) if t.params]
    return trials[0] if trials else None


def new_database(kind: str, tmp_path=None) -> tuple[str, callable]:
    """A storage of this test's own on the shared server: (its URL, a function that removes it).

    PostgreSQL and MariaDB: a database made for it; Redis: a key prefix of its own; journal:
    a file under ``tmp_path``. Nothing else on the server is touched or looked at.
    """
    name = f"search_t_{uuid.uuid4().hex[:12]}"
    if kind == "journal":
        return f"journal:///{tmp_path}/{name}.log", lambda: None
    if kind == "redis":
        return f"redis://127.0.0.1:6379/0?prefix={name}", lambda: _drop_redis(name)
    if kind == "postgresql":
        _pg(f'CREATE DATABASE "{name}"')
        return f"postgresql://root@127.0.0.1:5432/{name}", lambda: _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if kind == "mysql":
        _mysql(f"CREATE DATABASE `{name}`")
        return f"mysql+pymysql://root@127.0.0.1:3306/{name}", lambda: _mysql(f"DROP DATABASE IF EXISTS `{name}`")
    raise ValueError(kind)


def _pg(statement: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://root@127.0.0.1:5432/test", autocommit=True) as conn:
        conn.execute(statement)


def _mysql(statement: str) -> None:
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
    finally:
        conn.close()


def _drop_redis(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
