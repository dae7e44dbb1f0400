"""Heartbeats that survive a lost storage, for RDB storages and for Optuna's journal.

A running trial beats every ``heartbeat_interval`` seconds from a thread Optuna starts;
the next worker to start a trial fails the trials whose beat stopped for longer than
the grace period (their worker was killed) and re-runs their parameters once.

Two gaps in Optuna's own mechanism are closed here:
- Its heartbeat thread dies with a traceback on the first storage error (a database
  restart). Here a failed beat is one line on stderr, and the thread beats on.
- RDB storages ignore a RUNNING trial with no heartbeat row. A worker that dies between
  creating its trial and the first beat (or loses the database there) leaves such a
  trial, RUNNING forever. Here it is stale once it is older than the grace period.
Journal storages (a file, Redis) have no heartbeat at all; here it is a trial system
attribute.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import optuna
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from search._errors import is_storage_error
from search._optuna import BaseHeartbeat, heartbeat_trial_ids, trial_id

HEARTBEAT_ATTR = "search:heartbeat"
MAX_RETRY = 1  # a killed worker's trial is re-run once; a second death means the trial itself kills


def retry_callback() -> Callable[[optuna.Study, FrozenTrial], None]:
    return RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)


class _GuardedBeat:
    """Runs one beat; a failure is one line on stderr (once per outage), never a dead thread."""

    def __init__(self) -> None:
        self._failing = False
        self._lock = threading.Lock()

    def __call__(self, beat: Callable[[int], None], trial: int) -> None:
        try:
            beat(trial)
        except Exception as exc:  # noqa: BLE001 - a beat must never kill its thread
            with self._lock:
                if not self._failing:
                    what = "lost the storage" if is_storage_error(exc) else f"failed ({type(exc).__name__})"
                    line = str(exc).strip().splitlines()
                    print(f"search: heartbeat of trial id {trial} {what}: {line[0][:200] if line else ''}; retrying",
                          file=sys.stderr, flush=True)
                self._failing = True
            return
        with self._lock:
            self._failing = False


def _older_than(trial: FrozenTrial, seconds: float, now: float) -> bool:
    started = trial.datetime_start.timestamp() if trial.datetime_start else now
    return now - started > seconds


class HeartbeatRDBStorage(RDBStorage):
    """Optuna's RDB storage with guarded beats, and trials that never beat counted as stale."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._guard = _GuardedBeat()

    def record_heartbeat(self, trial_id: int) -> None:
        self._guard(super().record_heartbeat, trial_id)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = list(super()._get_stale_trial_ids(study_id))
        grace = self.grace_period or 2 * (self.heartbeat_interval or 0)
        now = time.time()
        silent = [trial_id(t) for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
                  if trial_id(t) not in stale and _older_than(t, grace, now)]
        beating = heartbeat_trial_ids(self, silent)
        return stale + [t for t in silent if t not in beating]


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """A journal storage whose running trials beat every ``heartbeat_interval`` seconds."""

    def __init__(self, backend, heartbeat_interval: int, grace_period: int | None = None):
        super().__init__(backend)
        self._heartbeat_interval = heartbeat_interval
        self._grace_period = grace_period or 2 * heartbeat_interval
        self._stale_callback = retry_callback()
        self._guard = _GuardedBeat()

    def record_heartbeat(self, trial_id: int) -> None:
        self._guard(lambda t: self.set_trial_system_attr(t, HEARTBEAT_ATTR, time.time()), trial_id)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            # A trial retried from a dead one copies its attributes; only its own start counts then.
            started = trial.datetime_start.timestamp() if trial.datetime_start else now
            beat = max(trial.system_attrs.get(HEARTBEAT_ATTR, 0.0), started)
            if now - beat > self._grace_period:
                stale.append(trial_id(trial))
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._heartbeat_interval

    def get_heartbeat_stale_trial_callback(self):
        return self._stale_callback


