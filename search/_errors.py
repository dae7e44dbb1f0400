"""The errors of study orchestration, and how to tell a lost storage from a bug.

Every error of the tool's is a `SearchError` (defined at the bottom layer, objectives/_errors.py,
so the objectives' own errors share the root). The CLI turns one into one line and an exit code; anything else is a bug and
keeps its traceback (shown with ``--verbose``).
"""

from __future__ import annotations

import errno
import re

from objectives._errors import SearchError  # the one root, re-exported: objectives' errors are SearchErrors too

ERROR_ATTR = "error"  # a failed trial's user attribute: why it failed, in one line


class RunStopped(SearchError):
    """A run that stopped part-way with an error: why, and how many of its trials finished (they are stored)."""

    def __init__(self, reason: str, finished: int):
        super().__init__(f"{reason}; the {finished} trial(s) this run finished are stored")
        self.reason, self.finished = reason, finished


def storage_error_types() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the storage went away or cannot be reached"."""
    import sqlalchemy.exc

    kinds: tuple[type[BaseException], ...] = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
    try:
        import redis.exceptions

        kinds += (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
    except ImportError:
        pass
    return kinds


def _chain(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        yield exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__


# A storage that answers but cannot be written: waiting does not mend it (SQLite's, PostgreSQL's,
# MySQL's and the file system's own words).
_NO_SPACE = re.compile(
    r"disk is full|no space left|could not extend file|disk full|quota exceeded|the table '[^']*' is full",
    re.IGNORECASE,
)
_READ_ONLY = re.compile(r"readonly database|read-only (file system|transaction)", re.IGNORECASE)
_NO_MEMORY = re.compile(r"OOM command not allowed")  # a Redis at its maxmemory, evicting nothing


def storage_fault(exc: BaseException | None) -> str | None:
    """ "no space left on device" or "read-only" when ``exc`` (or its cause) says the storage cannot be written."""
    for one in _chain(exc):
        if isinstance(one, OSError) and one.errno in (errno.ENOSPC, errno.EDQUOT):
            return "no space left on device"
        if isinstance(one, OSError) and one.errno == errno.EROFS:
            return "read-only file system"
        if isinstance(one, OSError) and one.errno == errno.EIO:
            return "input/output error (the disk, or the network file system, failed a write)"
        if _NO_MEMORY.search(str(one)):
            return "out of memory (the Redis server is at its maxmemory)"
        if _NO_SPACE.search(str(one)):
            return "no space left on device"
        if _READ_ONLY.search(str(one)):
            return "read-only"
    return None


# A transaction the database rolled back to break a lock conflict between workers: MySQL's and
# MariaDB's deadlock (1213) and lock wait timeout (1205), PostgreSQL's deadlock (40P01) and
# serialization failure (40001). The database is fine and the transaction left nothing behind;
# it is to be run again ("always be prepared to re-issue a transaction": MySQL's manual).
_MYSQL_CONFLICTS = (1213, 1205)
_POSTGRES_CONFLICTS = ("40P01", "40001")


def is_lock_conflict(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or its cause) is a transaction rolled back by the database to break a lock conflict."""
    for one in _chain(exc):
        if (getattr(one, "pgcode", None) or getattr(one, "sqlstate", None)) in _POSTGRES_CONFLICTS:
            return True
        if type(one).__module__.startswith("pymysql") and one.args[:1] and one.args[0] in _MYSQL_CONFLICTS:
            return True
    return False


def is_storage_error(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an error it was raised from, means the storage went away (and may come back).

    The chain matters: when the storage fails while Optuna records a trial, Optuna's own
    clean-up can raise a second error (an UnboundLocalError in Optuna 5) on top of it. A
    full disk or a read-only file is not a lost storage: `storage_fault` names it.
    """
    if storage_fault(exc) is not None:
        return False
    kinds = storage_error_types()
    return any(_says_lost(one, kinds) for one in _chain(exc))


def storage_cause(exc: BaseException) -> BaseException:
    """The error in ``exc``'s chain that says what happened to the storage (not Optuna's clean-up error on top)."""
    kinds = storage_error_types()
    return next((one for one in _chain(exc) if _says_lost(one, kinds)), exc)


def _says_lost(one: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    return isinstance(one, kinds) or _lost_proxy(one)


# A gRPC storage proxy's call that found no proxy, or no answer in time; or the database behind the proxy lost
# (Optuna's servicer answers its error as UNKNOWN, with the driver's words).
_PROXY_LOST_CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED")
_DATABASE_LOST = re.compile(r"OperationalError|InterfaceError|ConnectionError|server closed the connection")


def _lost_proxy(exc: BaseException) -> bool:
    code = getattr(exc, "code", None)
    if not callable(code) or not type(exc).__module__.startswith("grpc"):
        return False
    name = getattr(code(), "name", "")
    return name in _PROXY_LOST_CODES or (name == "UNKNOWN" and bool(_DATABASE_LOST.search(str(exc))))


class BudgetSpent(SearchError):
    """The study's trial budget (``--total-trials``) holds no trial to run: every one is taken."""


class NothingToConfirm(SearchError):
    """A study with no completed trial that confirmation could take (none yet, or every one diverged)."""
