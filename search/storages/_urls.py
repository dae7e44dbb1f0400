"""Storage URLs: the default, the kinds accepted, where a file storage lives, passwords hidden.

Accepted forms (file paths follow SQLAlchemy's SQLite convention: three slashes are a
path relative to the working directory, four an absolute one):
    sqlite:///studies/studies.db             the default: one file, one worker at a time
    postgresql://user:pw@host:5432/db        many workers, many machines
    mysql+pymysql://user:pw@host:3306/db     likewise
    journal:///studies/study.log             Optuna's journal file (many local processes)
    journal:////var/optuna/study.log         ... at an absolute path
    redis://host:6379/0                      Optuna's journal in Redis (many machines)
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

from search._errors import SearchError

DEFAULT_STORAGE = "sqlite:///studies/studies.db"
STORAGE_ENV = "SEARCH_STORAGE"
RDB_SCHEMES = ("sqlite", "postgresql", "mysql")
_FORMS = (
    "sqlite:///FILE, postgresql://..., mysql+pymysql://..., journal:///FILE, redis://HOST:PORT/DB or grpc://HOST:PORT"
)

# Query parameters that carry a secret (SQLAlchemy's drivers, libpq, redis-py).
_SECRET_PARAM = re.compile(r"([?&;](?:[^=&;#]*pass[^=&;#]*|pwd|secret|token|sslkey)=)([^&;#]*)", re.IGNORECASE)


def resolve_storage_url(url: str | None) -> str:
    """``url``, else ``$SEARCH_STORAGE``, else the SQLite file under ./studies/."""
    return url or os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE


def storage_kind(url: str) -> str:
    """``sqlite``, ``postgresql``, ``mysql``, ``journal``, ``redis`` or ``grpc`` (a storage proxy); anything else is
    refused."""
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    if scheme in ("rediss", "unix"):  # Redis over TLS, or its unix socket
        return "redis"
    if scheme in (*RDB_SCHEMES, "journal", "redis", "grpc"):
        return scheme
    raise SearchError(f"storage {redact(url)!r} is not a storage URL; use {_FORMS}")


def _userinfo_span(text: str) -> tuple[int, int] | None:
    """Where the password of ``scheme://user:password@host`` lies in ``text``, if it has one.

    A password may hold unescaped ``@ : / ? #``: it ends at the last ``@`` that a host (and
    port) follows. An ``@`` further on (in a query) can only make more of the text hidden,
    never less.
    """
    start = text.find("://")
    if start < 0:
        return None
    start += 3
    at = next(
        (m.start() for m in reversed(list(re.finditer("@", text[start:]))) if _HOST.match(text, start + m.start() + 1)),
        None,
    )
    if at is None:
        return None
    at += start
    colon = text.find(":", start, at)
    return (colon + 1, at) if colon >= 0 else None


# What follows the '@' that ends a password: a host and port, then the path, the query or the end.
_HOST = re.compile(r"[\w.\-\[\]:%]*(?=[/?#]|$)")


def redact(text: str) -> str:
    """``text`` (a URL, or ``--storage=URL``) with every password replaced by ``***``: safe to print and store."""
    span = _userinfo_span(text)
    if span is not None and span[1] > span[0]:
        text = text[: span[0]] + "***" + text[span[1] :]
    return _SECRET_PARAM.sub(lambda m: m.group(1) + "***", text)


def secrets_of(url: str) -> list[str]:
    """The passwords in ``url`` as written and decoded, longest first (for scrubbing messages)."""
    found = []
    span = _userinfo_span(url)
    if span is not None and span[1] > span[0]:
        found.append(url[span[0] : span[1]])
    found += [m.group(2) for m in _SECRET_PARAM.finditer(url) if m.group(2)]
    found += [unquote(s) for s in found]
    return sorted({s for s in found if s}, key=len, reverse=True)


def scrub(message: str, url: str) -> str:
    """A driver's error text with the URL's passwords removed, first line only."""
    for secret in secrets_of(url):
        message = message.replace(secret, "***")
    first = message.strip().splitlines()[0] if message.strip() else ""
    # SQLAlchemy prefixes "(module.Error) "; the reader needs only what follows.
    if first.startswith("(") and ") " in first:
        first = first.split(") ", 1)[1]
    return first


def storage_exists(url: str) -> bool:
    """False for a SQLite or journal file that is not there yet; True for a server (it is asked later)."""
    kind = storage_kind(url)
    if kind == "journal":
        return journal_path(url).exists()
    if kind == "sqlite":
        try:
            database = sqlite_file(url)
        except Exception:  # noqa: BLE001 - a malformed URL: let open_storage say what is wrong
            return True
        return database is None or database.exists()
    return True


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (its query left out); None for an in-memory database."""
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    return None if not database or database == ":memory:" else Path(database)


def journal_path(url: str) -> Path:
    """The file of ``journal:///relative/path`` or ``journal:////absolute/path``."""
    rest = url.split("://", 1)[1]
    if not rest.startswith("/") or rest == "/":
        raise SearchError(
            f"storage {redact(url)!r} is not a journal URL; use journal:///relative/path.log "
            "(three slashes: from the working directory) or journal:////absolute/path.log (four)"
        )
    return Path(rest[1:])
