"""Heartbeats for Optuna's journal storage, which has none of its own.

RDB storages record a heartbeat per running trial and let the next worker fail the
trials whose heartbeat stopped (a killed worker) and re-run their parameters. This
gives journal storages (a file, Redis) the same: the heartbeat is a trial system
attribute, and Optuna's own heartbeat thread and stale-trial check drive it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import optuna
from optuna.storages import JournalStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

HEARTBEAT_ATTR = "search:heartbeat"
MAX_RETRY = 1  # a killed worker's trial is re-run once; a second death means the trial itself kills


def retry_callback() -> Callable[[optuna.Study, FrozenTrial], None]:
    return RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """A journal storage whose running trials beat every ``heartbeat_interval`` seconds."""

    def __init__(self, backend, heartbeat_interval: int, grace_period: int | None = None):
        super().__init__(backend)
        self._heartbeat_interval = heartbeat_interval
        self._grace_period = grace_period or 2 * heartbeat_interval
        self._stale_callback = retry_callback()

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            # A trial retried from a dead one copies its attributes; only its own start counts then.
            started = trial.datetime_start.timestamp() if trial.datetime_start else now
            beat = max(trial.system_attrs.get(HEARTBEAT_ATTR, 0.0), started)
            if now - beat > self._grace_period:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._heartbeat_interval

    def get_heartbeat_stale_trial_callback(self):
        return self._stale_callback
