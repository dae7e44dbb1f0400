"""Storage URLs: the default, redaction of passwords, and opening Optuna storages.

Accepted forms:
    sqlite:///studies/studies.db             the default: one file, one worker at a time
    postgresql://user:pw@host:5432/db        many workers, many machines
    mysql+pymysql://user:pw@host:3306/db     likewise
    journal:///path/to/study.log             Optuna's journal file (many local processes)
    redis://host:6379/0                      Optuna's journal in Redis (many machines)
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import optuna
from optuna.storages import BaseStorage

from search._errors import SearchError
from search._heartbeat import HeartbeatJournalStorage, retry_callback

DEFAULT_STORAGE = "sqlite:///studies/studies.db"
STORAGE_ENV = "SEARCH_STORAGE"
_RDB_SCHEMES = ("sqlite", "postgresql", "mysql")


def resolve_storage_url(url: str | None) -> str:
    """``url``, else ``$SEARCH_STORAGE``, else the SQLite file under ./studies/."""
    return url or os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE


def storage_kind(url: str) -> str:
    """``sqlite``, ``postgresql``, ``mysql``, ``journal`` or ``redis``; anything else is refused."""
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    if scheme in (*_RDB_SCHEMES, "journal", "redis"):
        return scheme
    raise SearchError(
        f"storage {redact(url)!r} is not a storage URL; use sqlite:///FILE, postgresql://..., "
        "mysql+pymysql://..., journal:///FILE or redis://HOST:PORT/DB"
    )


def redact(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``: safe to print and store."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)
        userinfo = netloc[0].split(":", 1)[0] + ":***"
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc[1]}"))
    except ValueError:  # a malformed URL (a bad port, say): hide everything after the scheme
        return url.split("://", 1)[0] + "://***"


def scrub(message: str, url: str) -> str:
    """A driver's error text with the URL's password removed, first line only."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        message = message.replace(password, "***")
    first = message.strip().splitlines()[0] if message.strip() else ""
    # SQLAlchemy prefixes "(module.Error) "; the reader needs only what follows.
    if first.startswith("(") and ") " in first:
        first = first.split(") ", 1)[1]
    return first


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


def _open(url: str, kind: str, beat: dict, heartbeat: int | None, create: bool) -> BaseStorage:
    try:
        if kind == "sqlite":
            return _open_sqlite(url, create, beat)
        if kind in _RDB_SCHEMES:
            # pre_ping: a pooled connection that died with a database restart is replaced.
            return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True}, **beat)
        if kind == "journal":
            backend = _journal_file_backend(url.split("://", 1)[1], create)
        else:
            from optuna.storages.journal import JournalRedisBackend

            backend = JournalRedisBackend(url)
            backend._redis.ping()  # fail now, with one line, rather than mid-study
        storage = HeartbeatJournalStorage(backend, heartbeat) if heartbeat else optuna.storages.JournalStorage(backend)
        storage.get_all_studies()  # a journal is read lazily: find a corrupt one now, not mid-study
        return storage
    except SearchError:
        raise
    except ImportError as exc:  # Optuna re-raises a missing driver as a plain ImportError
        raise SearchError(
            f"storage {redact(url)} needs a database driver that is not installed "
            f"({scrub(str(exc), url)}); install them with: pip install 'search[db]'"
        ) from exc
    except ValueError as exc:  # json's decoder: a journal line that is not JSON
        if kind in ("journal", "redis"):
            raise SearchError(f"storage {redact(url)} is not an Optuna journal ({scrub(str(exc), url)})") from exc
        raise SearchError(f"cannot open storage {redact(url)}: {scrub(str(exc), url)}") from exc
    except Exception as exc:  # SQLAlchemy, the database drivers and redis each have their own
        raise SearchError(f"cannot open storage {redact(url)}: {scrub(str(exc), url)}") from exc


def _heartbeat_options(heartbeat: int | None) -> dict:
    if not heartbeat:
        return {}
    return {
        "heartbeat_interval": heartbeat,
        "grace_period": 2 * heartbeat,
        "heartbeat_stale_trial_callback": retry_callback(),
    }


def _open_sqlite(url: str, create: bool, beat: dict) -> BaseStorage:
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if database and database != ":memory:":
        _file_for_storage(Path(database), create, f"storage {url}")
    # A generous busy timeout: readers (the dashboard, `search trials`) may hold the file briefly.
    return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}}, **beat)


def _journal_file_backend(path_text: str, create: bool):
    from optuna.storages.journal import JournalFileBackend

    path = Path(path_text)
    _file_for_storage(path, create, f"journal file {path}")
    _check_journal(path)
    return JournalFileBackend(str(path))


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
