"""Every use of Optuna's private API, in one place.

Optuna keeps no promise about these names. `tests/test_optuna_private.py` checks each
against the installed Optuna, so an upgrade that moves one fails there, loudly, rather
than mid-study on a user's cluster. pyproject.toml pins the Optuna range the tests cover.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.storages._heartbeat import BaseHeartbeat  # the interface heartbeats plug into

__all__ = ["BaseHeartbeat", "heartbeat_trial_ids", "redis_ping", "study_id", "study_storage", "trial_id"]


def study_storage(study: optuna.Study) -> BaseStorage:
    """The storage a study was loaded from (Optuna has no public accessor)."""
    return study._storage


def trial_id(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """A trial's id in its storage (its ``number`` counts per study; the storage keys by id)."""
    return trial._trial_id


def study_id(study: Any) -> int:
    """The storage id of a study (an `optuna.Study` or a `FrozenStudy` from ``get_all_studies``)."""
    return study._study_id


def redis_ping(backend: Any) -> None:
    """Ask a `JournalRedisBackend`'s Redis for an answer now (it connects lazily)."""
    backend._redis.ping()


def heartbeat_trial_ids(storage: optuna.storages.RDBStorage, trial_ids: list[int]) -> set[int]:
    """Which of ``trial_ids`` have a heartbeat row in an RDB storage."""
    if not trial_ids:
        return set()
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(storage.scoped_session) as session:
        rows = (
            session.query(models.TrialHeartbeatModel.trial_id)
            .filter(models.TrialHeartbeatModel.trial_id.in_(trial_ids))
            .all()
        )
    return {row[0] for row in rows}
