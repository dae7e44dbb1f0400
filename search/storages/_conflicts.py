"""Writes the database rolled back to break a lock conflict between workers, run again.

Under load, workers' transactions on MySQL and MariaDB deadlock now and then, and wait out
each other's row locks; PostgreSQL breaks its deadlocks too. Optuna raises either as a storage
error, which a worker would take for a lost storage (failing its trial and queueing it again:
a trial more than asked). Each of Optuna's write methods is one transaction, and one the
database rolled back left nothing behind, so running it again is exact.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from optuna.storages import RDBStorage

from search._errors import is_lock_conflict
from search._optuna import RDB_PRIVATE_WRITES

T = TypeVar("T")

# A write the database rolled back to break a lock conflict is run again, up to this many times.
CONFLICT_RETRIES = 6
_RDB_WRITES = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "set_trial_param",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "record_heartbeat",
    *RDB_PRIVATE_WRITES,
)


def _rerun_on_conflict(name: str):
    """Optuna's method ``name``, run again when the database rolled it back to break a conflict (the MariaDB
    load test once stored 202 trials of 200 this way)."""

    @functools.wraps(getattr(RDBStorage, name))
    def rerun(self, *args, **kwargs):
        return rerun_on_conflict(getattr(RDBStorage, name), self, *args, **kwargs)  # looked up now: Optuna's

    return rerun


def rerun_on_conflict(write: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``write(*args, **kwargs)``, one transaction, run again while the database rolls it back to break a
    lock conflict (up to `CONFLICT_RETRIES` times)."""
    for attempt in range(CONFLICT_RETRIES):
        try:
            return write(*args, **kwargs)
        except Exception as exc:
            if attempt == CONFLICT_RETRIES - 1 or not is_lock_conflict(exc):
                raise
            time.sleep(random.uniform(0.0, 0.02 * 2**attempt))  # apart, so the two do not collide again
    raise AssertionError("unreachable")


class RerunRDBStorage(RDBStorage):
    """Optuna's RDB storage whose single-transaction writes are run again after a lock conflict."""


for _name in _RDB_WRITES:
    setattr(RerunRDBStorage, _name, _rerun_on_conflict(_name))
