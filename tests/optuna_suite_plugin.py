"""A pytest plugin that runs Optuna's own storage, heartbeat and study tests against this project's storages.

Loaded into a pytest run of the tests in Optuna's source distribution (`tests/test_optuna_suite.py`
fetches it with pip). Optuna's tests ask `optuna.testing.storages.StorageSupplier` for a storage by
mode; this plugin keeps one mode (``sqlite`` for the RDB kinds, ``journal`` for the journal kinds)
and answers it with a storage on the backend named by ``SEARCH_SUITE_BACKEND`` (sqlite, journal,
redis, postgresql, mysql), made by ``SEARCH_SUITE_IMPL``: ``ours`` (`search.open_storage` and its
heartbeat storages) or ``plain`` (Optuna's own classes on the same server: the control).
"""

from __future__ import annotations

import os
import tempfile
import uuid

import optuna
import optuna.testing.storages as supplied
import pytest

BACKEND = os.environ.get("SEARCH_SUITE_BACKEND", "sqlite")
IMPL = os.environ.get("SEARCH_SUITE_IMPL", "ours")
DATABASE_URL = os.environ.get("SEARCH_SUITE_URL", "")  # postgresql/mysql: a database of the run's own
KEPT_MODE = "journal" if BACKEND in ("journal", "redis") else "sqlite"
_MODES = set(supplied.STORAGE_MODES) | set(supplied.STORAGE_MODES_HEARTBEAT)


def _kept(item) -> bool:
    """A test of the kept mode (every storage mode it names), or of none. The heartbeat tests name only
    SQLite modes; on a journal backend they are answered by the journal's heartbeat storage."""
    params = getattr(item, "callspec", None)
    modes = [v for v in (params.params.values() if params else ()) if isinstance(v, str) and v in _MODES]
    wanted = {KEPT_MODE, "sqlite"} if "test_heartbeat" in item.nodeid and KEPT_MODE == "journal" else {KEPT_MODE}
    return all(m in wanted for m in modes) and (not modes or modes[0] in wanted)


def pytest_collection_modifyitems(config, items):
    """Keep the tests of one storage mode (and those without a mode): the backend under test answers it."""
    kept = [item for item in items if _kept(item)]
    config.hook.pytest_deselected(items=[item for item in items if not _kept(item)])
    items[:] = kept


class Supplier:
    """Optuna's StorageSupplier, answering the kept mode with the backend under test."""

    def __init__(self, storage_specifier: str, **kwargs):
        self.mode, self.kwargs = storage_specifier, kwargs
        self.storage = None
        self.tempdir = None

    def __enter__(self):
        if self.mode not in (KEPT_MODE, "sqlite"):
            raise RuntimeError(f"mode {self.mode} is not under test here")
        self.tempdir = tempfile.TemporaryDirectory()
        self.storage = _make(self._url(), self.kwargs)
        return self.storage

    def _url(self) -> str:
        if BACKEND == "sqlite":
            return f"sqlite:///{self.tempdir.name}/optuna.db"
        if BACKEND == "journal":
            return f"journal:///{self.tempdir.name}/optuna.log"
        if BACKEND == "redis":
            return f"redis://127.0.0.1:6379/0?prefix=optuna_suite_{uuid.uuid4().hex}"
        return DATABASE_URL

    def __exit__(self, *exc):
        engine = getattr(self.storage, "engine", None)
        if engine is not None and BACKEND in ("postgresql", "mysql"):  # a server database: emptied for the next test
            _empty(engine)
        if BACKEND == "redis":
            _drop_redis(self._prefix())
        self.tempdir.cleanup()

    def _prefix(self) -> str:
        backend = getattr(self.storage, "_backend", None)
        return getattr(backend, "_prefix", "")


def _empty(engine) -> None:
    """Every row of Optuna's tables gone (its version rows kept): cheaper than making the tables anew."""
    from optuna.storages._rdb.models import BaseModel

    engine.dispose()
    tables = [t.name for t in BaseModel.metadata.sorted_tables if t.name != "version_info"]
    with engine.begin() as conn:
        if BACKEND == "postgresql":
            conn.exec_driver_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        else:
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=0")
            for table in tables:
                conn.exec_driver_sql(f"TRUNCATE TABLE {table}")
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=1")
    engine.dispose()


def _make(url: str, kwargs: dict):
    """The storage under test for ``url``, with Optuna's heartbeat arguments when the test gives them."""
    interval, grace = kwargs.get("heartbeat_interval"), kwargs.get("grace_period")
    callback = kwargs.get("heartbeat_stale_trial_callback")
    if IMPL == "plain":
        return _plain(url, kwargs)
    from search import open_storage

    if interval is None and grace is None and callback is None:
        return open_storage(url)
    from search.storages._heartbeat import check_interval

    check_interval(interval, grace)  # Optuna's own rule, as the storages below apply it
    storage = open_storage(url, heartbeat=interval or 60)
    if hasattr(storage, "grace_period"):  # RDB
        storage.heartbeat_interval, storage.grace_period = interval, grace
        if callback is not None:
            storage.heartbeat_stale_trial_callback = callback
    elif hasattr(storage, "_grace_period"):  # journal
        storage._heartbeat_interval = interval or storage._heartbeat_interval
        storage._grace_period = grace or 2 * storage._heartbeat_interval
        if callback is not None:
            storage._stale_callback = callback
    return storage


def _plain(url: str, kwargs: dict):
    if url.startswith("journal://"):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url.split(":///", 1)[1]))
    if url.startswith("redis://"):
        from optuna.storages.journal import JournalRedisBackend

        plain, prefix = url.split("?prefix=")
        return optuna.storages.JournalStorage(JournalRedisBackend(plain, prefix=prefix))
    return optuna.storages.RDBStorage(url, **kwargs)


def _drop_redis(prefix: str) -> None:
    import redis

    if not prefix:
        return
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)


ORIGINAL = supplied.StorageSupplier


@pytest.fixture(autouse=True)
def _supplier(monkeypatch):
    """Every module that imported Optuna's StorageSupplier gets this one instead."""
    import sys

    for module in list(sys.modules.values()):
        if getattr(module, "StorageSupplier", None) is ORIGINAL:
            monkeypatch.setattr(module, "StorageSupplier", Supplier)
