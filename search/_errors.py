"""The error type of study orchestration, and how to tell a lost storage from a bug.

The CLI turns a `SearchError` into one line and an exit code; anything else is a bug and
keeps its traceback (shown with ``--verbose``).
"""

from __future__ import annotations


class SearchError(Exception):
    """Bad input or an unusable storage: a study that does not fit, an unreachable database."""


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


def is_storage_error(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an error it was raised from, means the storage went away.

    The chain matters: when the storage fails while Optuna records a trial, Optuna's own
    clean-up can raise a second error (an UnboundLocalError in Optuna 5) on top of it.
    """
    kinds = storage_error_types()
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kinds):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


class NothingToConfirm(SearchError):
    """A study with no completed trial that confirmation could take (none yet, or every one diverged)."""
