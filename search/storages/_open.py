"""Opening Optuna storages: heartbeats, network timeouts, one clear error when it cannot be done.

A worker on a cluster must not hang on a dead network link, so every network driver
gets connect, keepalive and read timeouts (`NETWORK_TIMEOUTS`) unless the URL sets them.
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from pathlib import Path

import optuna
from optuna.storages import BaseStorage

from search._errors import SearchError, storage_error_types
from search._optuna import redis_ping
from search.storages._heartbeat import HeartbeatJournalStorage, HeartbeatRDBStorage, retry_callback
from search.storages._urls import RDB_SCHEMES, journal_path, redact, scrub, storage_kind

# Seconds. A dead link (packets dropped, not refused) is found by these, not by TCP's
# own defaults (which wait for many minutes).
NETWORK_TIMEOUTS = {
    "connect": 10,  # to open a connection
    "keepalive_idle": 10,  # an idle connection is probed after this...
    "keepalive_interval": 5,  # ...every this...
    "keepalive_count": 3,  # ...and declared dead after this many unanswered probes
    # The longest a statement may run, or sent data may wait for an answer. A cluster whose
    # statements are slow can raise it; tests of dead links lower it ($SEARCH_READ_TIMEOUT).
    "read": int(os.environ.get("SEARCH_READ_TIMEOUT", "60")),
}
# The package that brings each database driver (as Python names it when it is missing).
_DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pymysql": "pymysql",
    "MySQLdb": "mysqlclient",
    "redis": "redis",
}


def open_storage(url: str, heartbeat: int | None = None, create: bool = True) -> BaseStorage:
    """An Optuna storage for ``url``; one clear `SearchError` when it cannot be had.

    ``heartbeat`` (seconds) makes each running trial beat; a trial whose beat stops for
    twice that long (its worker was killed) is failed by the next worker and its
    parameters re-run once. With ``create=False`` a SQLite or journal file that does
    not exist is an error rather than a new empty storage (inspection must not create).
    """
    kind = storage_kind(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats are "experimental"
        return _open(url, kind, _heartbeat_options(heartbeat), heartbeat, create)


def _user_errors() -> tuple[type[BaseException], ...]:
    """What a URL, a server or a file can cause while a storage opens (anything else is a bug)."""
    import sqlalchemy.exc

    kinds: tuple[type[BaseException], ...] = (sqlalchemy.exc.SQLAlchemyError, OSError, *storage_error_types())
    try:
        import redis.exceptions

        kinds += (redis.exceptions.RedisError,)
    except ImportError:
        pass
    return kinds


def _open(url: str, kind: str, beat: dict, heartbeat: int | None, create: bool) -> BaseStorage:
    try:
        if kind == "sqlite":
            return _open_sqlite(url, create, beat)
        if kind in RDB_SCHEMES:
            return _open_rdb(url, kind, beat)
        if kind == "grpc":
            from search.storages._grpc import open_grpc

            t = NETWORK_TIMEOUTS
            return open_grpc(url, heartbeat or None, t["connect"], t["read"])
        if kind == "journal":
            backend = _journal_file_backend(journal_path(url), create)
        else:
            from search.storages._journal import SafeJournalRedisBackend

            plain, prefix = redis_prefix(url)
            backend = SafeJournalRedisBackend(_redis_url(plain), prefix=prefix)
            redis_ping(backend)  # fail now, with one line, rather than mid-study
            if create:
                backend.repair()  # before the first read: a missing last entry would make it wait forever
        storage = HeartbeatJournalStorage(backend, heartbeat or None)
        storage.get_all_studies()  # a journal is read lazily: find a corrupt one now, not mid-study
        return storage
    except SearchError:
        raise
    except ImportError as exc:  # Optuna re-raises a missing driver as a plain ImportError
        raise SearchError(
            f"storage {redact(url)} needs a database driver that is not installed "
            f"({scrub(str(exc), url)}); {driver_hint(exc)}"
        ) from exc
    except ValueError as exc:  # json's decoder: a journal line that is not JSON; a malformed URL
        if kind in ("journal", "redis"):
            raise SearchError(f"storage {redact(url)} is not an Optuna journal ({scrub(str(exc), url)})") from exc
        raise SearchError(f"cannot open storage {redact(url)}: {scrub(str(exc), url)}") from exc
    except _user_errors() as exc:
        raise SearchError(f"cannot open storage {redact(url)}: {scrub(str(exc), url)}") from exc


# Workers started together on an empty database each create Optuna's tables and version
# row; all but one lose that race ("already exists", a duplicate key). A loser opens again
# and finds the tables made.
_CREATION_RACE = re.compile(r"already exists|duplicate (key|entry)|unique constraint|database is locked", re.IGNORECASE)
_CREATION_TRIES = 5


def _open_rdb(url: str, kind: str, beat: dict) -> BaseStorage:

    # pre_ping: a pooled connection that died with a database restart is replaced.
    engine = {"pool_pre_ping": True, "connect_args": _network_args(url, kind)}
    return _creating(lambda: HeartbeatRDBStorage(url, engine_kwargs=engine, **beat))


def _creating(make):
    """``make()``, again when it lost the race to create Optuna's tables to another process starting at once."""
    import sqlalchemy.exc

    for attempt in range(1, _CREATION_TRIES):
        try:
            return make()
        except sqlalchemy.exc.SQLAlchemyError as exc:
            if not _CREATION_RACE.search(str(exc)):
                raise
        time.sleep(0.1 * attempt)
    return make()  # the last try: its error is the one reported


def release_connections(storage: BaseStorage) -> None:
    """Close an RDB storage's pooled connections (it opens new ones when next used)."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


def driver_hint(exc: BaseException) -> str:
    """The pip line that installs the missing driver, as a user can type it anywhere."""
    text, seen = "", exc
    while seen is not None:  # Optuna re-raises without the module's name; the cause has it
        text += f" {getattr(seen, 'name', '') or ''} {seen}"
        seen = seen.__cause__ or seen.__context__
    for module, package in _DRIVER_PACKAGES.items():
        if re.search(rf"\b{module}\b", text):
            return f"install it with: pip install '{package}'"
    return "install the drivers with: pip install 'psycopg[binary]' pymysql redis"


def _query_keys(url: str) -> set[str]:
    query = url.split("?", 1)[1] if "?" in url else ""
    return {part.split("=", 1)[0].lower() for part in re.split("[&;]", query) if part}


def _network_args(url: str, kind: str) -> dict:
    """Driver timeouts that end a hang on a dead link; what the URL sets itself is kept."""
    t = NETWORK_TIMEOUTS
    if kind == "postgresql":
        args = {
            "connect_timeout": t["connect"],
            "keepalives": 1,
            "keepalives_idle": t["keepalive_idle"],
            "keepalives_interval": t["keepalive_interval"],
            "keepalives_count": t["keepalive_count"],
            # Sent data left unacknowledged this long (milliseconds) closes the connection.
            "tcp_user_timeout": t["read"] * 1000,
            "options": _server_session_options(t),
        }
    else:  # pymysql, mysqlclient
        args = {
            "connect_timeout": t["connect"],
            "read_timeout": t["read"],
            "write_timeout": t["read"],
            # As PostgreSQL's idle_in_transaction_session_timeout: the server ends a session
            # silent this long, so a dead host's row locks go with it (the pool's pre-ping
            # replaces a live worker's idle connection that was ended).
            "init_command": f"SET SESSION wait_timeout={max(t['read'], 1)}",
        }
    given = _query_keys(url)
    return {k: v for k, v in args.items() if k not in given}


def _server_session_options(t: dict) -> str:
    """PostgreSQL settings for this worker's sessions, enforced by the server itself.

    A host that dies in the middle of a transaction leaves its session open on the server,
    holding row locks (the trial it was updating, the study row a new trial is numbered
    under), and every other worker that needs those rows waits. The server ends such a
    session once it has been idle in its transaction for the read timeout, and its own
    keepalives find a peer that is gone even when the session is idle.
    """
    read_ms = t["read"] * 1000
    return (
        f"-c statement_timeout={read_ms} -c idle_in_transaction_session_timeout={read_ms} "
        f"-c tcp_keepalives_idle={t['keepalive_idle']} -c tcp_keepalives_interval={t['keepalive_interval']} "
        f"-c tcp_keepalives_count={t['keepalive_count']}"
    )


def redis_prefix(url: str) -> tuple[str, str]:
    """(``url`` without its ``prefix`` parameter, the prefix): several journals in one Redis database, apart."""
    from urllib.parse import parse_qsl, urlencode

    # Cut the query off by hand: urlunsplit writes "unix:///run/x.sock" back as
    # "unix:/run/x.sock", which redis-py refuses.
    base, _, query_text = url.partition("?")
    query = parse_qsl(query_text, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), "")
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return (base + "?" + rest if rest else base), prefix


def _redis_url(url: str) -> str:
    """``url`` with redis-py's socket timeouts and keepalive added where it sets none."""
    t = NETWORK_TIMEOUTS
    wanted = {
        "socket_connect_timeout": t["connect"],
        "socket_timeout": t["read"],
        "socket_keepalive": "true",
        "health_check_interval": t["keepalive_idle"],
    }
    if url.startswith("unix://"):  # a local socket: no TCP, no keepalive
        wanted = {"socket_timeout": t["read"]}
    given = _query_keys(url)
    extra = "&".join(f"{k}={v}" for k, v in wanted.items() if k not in given)
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + extra


def _heartbeat_options(heartbeat: int | None) -> dict:
    if not heartbeat:
        return {}
    return {
        "heartbeat_interval": heartbeat,
        "grace_period": 2 * heartbeat,
        "heartbeat_stale_trial_callback": retry_callback(),
    }


def _open_sqlite(url: str, create: bool, beat: dict) -> BaseStorage:
    """A SQLite file several processes of this machine can share (``--jobs``): a writer that finds the file
    locked waits its turn (up to a minute) instead of failing. (Not on a network file system: SQLite's locks
    are not reliable there; use a server or Redis across machines.)"""
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if database and database != ":memory:":
        _file_for_storage(Path(database), create, f"storage {url}")
    return _creating(lambda: HeartbeatRDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}}, **beat))


def _journal_file_backend(path: Path, create: bool):
    from search.storages._journal import SafeJournalFileBackend

    _file_for_storage(path, create, f"journal file {path}")
    _check_journal(path)
    backend = SafeJournalFileBackend(str(path))
    if create:  # opened to write: a torn last line is moved aside before anything is appended
        backend.repair()
    return backend


def _check_journal(path: Path) -> None:
    """Refuse a file that is not an Optuna journal before anything is appended to it.

    Optuna skips a last line without its newline (a write cut short); any other line
    must be JSON.
    """
    if not path.is_file():
        return
    with path.open("rb") as journal:
        for number, line in enumerate(journal, start=1):
            if not line.endswith(b"\n"):
                break
            try:
                json.loads(line)
            except ValueError:
                raise SearchError(f"journal file {path} is not an Optuna journal (line {number} is not JSON)") from None


def _file_for_storage(path: Path, create: bool, what: str) -> None:
    """A storage file that is missing: an error (``create=False``), else its folder is made."""
    if path.exists():
        return
    if not create:
        raise SearchError(f"{what} does not exist (no study has been run there yet)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SearchError(f"cannot create {path.parent} for {what}: {exc.strerror}") from exc
