"""Storage URLs: the default, redaction of passwords, and opening Optuna storages.

Accepted forms:
    sqlite:///studies/studies.db             the default: one file, one worker at a time
    postgresql://user:pw@host:5432/db        many workers, many machines
    mysql+pymysql://user:pw@host:3306/db     likewise
    journal:///path/to/study.log             Optuna's journal file (many local processes)
    redis://host:6379/0                      Optuna's journal in Redis (many machines)
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import optuna
from optuna.storages import BaseStorage

from search._errors import SearchError

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


def _scrub(message: str, url: str) -> str:
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


def open_storage(url: str, heartbeat_interval: int | None = None, create: bool = True) -> BaseStorage:
    """An Optuna storage for ``url``; one clear `SearchError` when it cannot be had.

    With ``create=False`` a SQLite or journal file that does not exist is an error
    rather than a new empty storage (inspection commands must not create files).
    """
    kind = storage_kind(url)
    try:
        if kind == "sqlite":
            return _open_sqlite(url, create)
        if kind in _RDB_SCHEMES:
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs={"pool_pre_ping": True},
                heartbeat_interval=heartbeat_interval,
            )
        if kind == "journal":
            return _open_journal_file(url.split("://", 1)[1], create)
        from optuna.storages.journal import JournalRedisBackend

        return optuna.storages.JournalStorage(JournalRedisBackend(url))
    except SearchError:
        raise
    except ModuleNotFoundError as exc:
        raise SearchError(
            f"storage {redact(url)} needs the Python package {exc.name!r}; "
            "install it with: pip install 'search[db]'"
        ) from exc
    except Exception as exc:  # SQLAlchemy, the database drivers and redis each have their own
        raise SearchError(f"cannot open storage {redact(url)}: {_scrub(str(exc), url)}") from exc


def _open_sqlite(url: str, create: bool) -> BaseStorage:
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if database and database != ":memory:":
        path = Path(database)
        if not path.exists():
            if not create:
                raise SearchError(f"storage {url} does not exist (no study has been run there yet)")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SearchError(f"cannot create {path.parent} for storage {url}: {exc.strerror}") from exc
    # A generous busy timeout: readers (the dashboard, `search trials`) may hold the file briefly.
    return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})


def _open_journal_file(path_text: str, create: bool) -> BaseStorage:
    from optuna.storages.journal import JournalFileBackend

    path = Path(path_text)
    if not path.exists():
        if not create:
            raise SearchError(f"journal file {path} does not exist (no study has been run there yet)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SearchError(f"cannot create {path.parent} for journal {path}: {exc.strerror}") from exc
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
