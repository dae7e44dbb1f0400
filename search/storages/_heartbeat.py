"""Heartbeats that never fail a live trial: each trial is judged by the beat its own worker promised, on one clock.

A running trial beats every ``heartbeat_interval`` seconds from a thread Optuna starts;
the next worker to start a trial fails the trials whose beat stopped (their worker was
killed) and re-runs their parameters once. Here:

- A trial records, when its worker creates (or takes) it, the interval its worker
  promised to beat at (`PROMISE_ATTR`), and beats once at once. It is judged by its own
  promise: stale after twice that interval without a beat. A trial that promised
  nothing (its worker runs with ``--heartbeat 0``) is never stale; a worker that beats
  every 60 s is not judged by one that beats every second.
- Ages come from one clock, the storage's: the database's for PostgreSQL, MySQL and
  SQLite (Optuna's heartbeat table), the Redis server's for a Redis journal, and the
  file system's for a journal file (the modification time of a file beside it, which a
  network file system sets from its server). A host whose clock is off by minutes
  neither fails others' healthy trials nor has its own failed.
- A beat that fails (a database restart) is one line on stderr, and the thread beats on.
- The storages pickle (their locks are made anew), as Optuna's do.
"""

from __future__ import annotations

import copy
import datetime
import sys
import threading
import uuid
from collections.abc import Callable

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from search._errors import ERROR_ATTR, is_storage_error
from search._optuna import (
    JournalStorageHooks,
    RDBStorageHooks,
    rdb_heartbeats,
    take_waiting,
    trial_id,
)
from search.storages._conflicts import RerunRDBStorage
from search.storages._time import storage_clock

PROMISE_ATTR = "search:beats"  # the seconds between beats a trial's worker promised
ASK_ATTR = "search:ask"  # a token of the creation that made the trial (see `_Promising.asked_but_lost`)
BEAT_ATTR = "search:heartbeat"  # a journal trial's last beat, on the storage's clock
MAX_RETRY = 1  # a killed worker's trial is re-run once; a second death means the trial itself kills


def retry_callback() -> Callable[[optuna.Study, FrozenTrial], None]:
    import warnings

    with warnings.catch_warnings():  # "experimental" since Optuna 2.x: noise to a user
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)


class _GuardedBeat:
    """Runs one beat; a failure is one line on stderr (once per outage), never a dead thread."""

    def __init__(self) -> None:
        self._failing = False
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {"_failing": False}

    def __setstate__(self, state: dict) -> None:
        self._failing = False
        self._lock = threading.Lock()

    def __call__(self, beat: Callable[[int], None], trial: int) -> None:
        try:
            beat(trial)
        except optuna.exceptions.UpdateFinishedTrialError:
            return  # another worker failed the trial a moment ago: nothing left to beat for
        except Exception as exc:  # noqa: BLE001 - a beat must never kill its thread
            with self._lock:
                if not self._failing:
                    what = "lost the storage" if is_storage_error(exc) else f"failed ({type(exc).__name__})"
                    line = str(exc).strip().splitlines()
                    print(
                        f"search: heartbeat of trial id {trial} {what}: {line[0][:200] if line else ''}; retrying",
                        file=sys.stderr,
                        flush=True,
                    )
                self._failing = True
            return
        with self._lock:
            self._failing = False


def check_interval(heartbeat_interval, grace_period) -> None:
    """Optuna's own rule for these arguments (`optuna.storages.RDBStorage` checks the same)."""
    if heartbeat_interval is not None and (not isinstance(heartbeat_interval, int) or heartbeat_interval <= 0):
        raise ValueError("The value of `heartbeat_interval` should be a positive integer.")
    if grace_period is not None and (not isinstance(grace_period, int) or grace_period <= 0):
        raise ValueError("The value of `grace_period` should be a positive integer.")


class _Promising:
    """A trial this process creates or takes to run records its worker's promise (0: none), and beats at once."""

    def _interval(self) -> int | None:
        raise NotImplementedError

    def _grace(self) -> float:
        raise NotImplementedError

    def _template(self, template_trial: FrozenTrial | None) -> FrozenTrial | None:
        """The new trial's template with this worker's promise in it (a worker that never beats promises
        nothing, and clears a promise a retried trial copied from its dead original), and a token of this
        creation, by which `asked_but_lost` finds the trial if the answer to its creation is lost."""
        if template_trial is not None and template_trial.state != TrialState.RUNNING:
            return _unmarked(template_trial)  # queued for later: whoever takes it promises then
        interval = self._interval()
        if not interval and (template_trial is None or PROMISE_ATTR not in template_trial.system_attrs):
            # A worker that never beats leaves Optuna's trial as Optuna makes it: its trials are never
            # judged, so one whose creation's answer was lost could not be told from a live one anyway.
            self._asked = None
            return template_trial
        if template_trial is None:
            template_trial = FrozenTrial(
                number=-1,
                state=TrialState.RUNNING,
                value=None,
                datetime_start=datetime.datetime.now(),
                datetime_complete=None,
                params={},
                distributions={},
                user_attrs={},
                system_attrs={},
                intermediate_values={},
                trial_id=-1,
            )
        self._asked = uuid.uuid4().hex
        template = copy.copy(template_trial)
        template.system_attrs = {**template_trial.system_attrs, ASK_ATTR: self._asked}
        if interval or PROMISE_ATTR in template_trial.system_attrs:
            template.system_attrs[PROMISE_ATTR] = interval or 0
        return template

    def asked_but_lost(self, study_id: int) -> int | None:
        """The trial this process's last creation made, if it is running though its creation failed.

        A creation can reach the storage and its answer be lost (a dropped link, a read timeout):
        the trial is stored, RUNNING, with no worker and no heartbeat, so no stale rule would ever
        end it. The worker finds it by the token its creation carried, and fails it.
        """
        token = getattr(self, "_asked", None)
        if token is None:
            return None
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):  # type: ignore[attr-defined]
            if trial.system_attrs.get(ASK_ATTR) == token:
                return trial_id(trial)
        return None

    def set_trial_state_values(self, trial_id: int, state: TrialState, values=None) -> bool:
        taken = super().set_trial_state_values(trial_id, state, values)  # type: ignore[misc]
        if taken and state == TrialState.RUNNING:
            self._promise(trial_id)
        return taken

    def _promise(self, trial_id: int) -> None:
        if self._interval():
            self.set_trial_system_attr(trial_id, PROMISE_ATTR, self._interval())  # type: ignore[attr-defined]
            self._first_beat(trial_id)
        elif PROMISE_ATTR in self.get_trial(trial_id).system_attrs:  # type: ignore[attr-defined]
            self.set_trial_system_attr(trial_id, PROMISE_ATTR, 0)  # type: ignore[attr-defined]

    def _first_beat(self, trial: int) -> None:
        if self._interval():
            self.record_heartbeat(trial)  # type: ignore[attr-defined]

    def _grace_of(self, promise) -> float | None:
        """A trial's grace: twice its own worker's promised interval (never shorter than this checker's);
        None for a trial whose worker promised no beat (it is never judged)."""
        if promise is None:
            return self._grace()  # a trial of plain Optuna's: judged as Optuna judges it, if it beats
        if not isinstance(promise, (int, float)) or promise <= 0:
            return None
        return max(2 * float(promise), self._grace())


def _unmarked(template: FrozenTrial) -> FrozenTrial:
    """A queued trial without the marks of the run it copies (Optuna's retry copies every attribute of the
    trial it retries): its original's last beat would make it stale the moment it is taken, before its
    own first beat; its original's creation token would let the original's worker fail it as its own lost
    creation; and its original's error would read as this worker's own failure of it."""
    system = {k: v for k, v in template.system_attrs.items() if k not in (BEAT_ATTR, ASK_ATTR)}
    user = {k: v for k, v in template.user_attrs.items() if k != ERROR_ATTR}
    if system == template.system_attrs and user == template.user_attrs:
        return template
    unmarked = copy.copy(template)
    unmarked.system_attrs, unmarked.user_attrs = system, user
    return unmarked


class HeartbeatRDBStorage(_Promising, RDBStorageHooks, RerunRDBStorage):
    """Optuna's RDB storage (the database's clock), with promises, per-trial grace and guarded beats."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._guard = _GuardedBeat()

    def _interval(self) -> int | None:
        return self.heartbeat_interval

    def _grace(self) -> float:
        return float(self.grace_period or 2 * (self.heartbeat_interval or 0))

    def record_heartbeat(self, trial_id: int) -> None:
        self._guard(super().record_heartbeat, trial_id)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values=None) -> bool:
        # SQLite's driver starts no transaction for Optuna's read-then-write, so two processes sharing a
        # file could both take one queued trial; one UPDATE ... WHERE state = WAITING cannot.
        if (
            state == TrialState.RUNNING
            and values is None
            and self.engine.dialect.name == "sqlite"
            and take_waiting(self, trial_id)
        ):
            self._promise(trial_id)
            return True
        # Not taken: Optuna's answer (False, or its error for a finished or unknown trial).
        return super().set_trial_state_values(trial_id, state, values)

    def create_frozen_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> FrozenTrial:
        # Optuna's cache in front of an RDB storage creates trials through this method (see RDBStorageHooks).
        return super().create_frozen_trial(study_id, self._template(template_trial))

    def beats_when_made(self) -> bool:
        # A trial's first beat goes in with its creation (one commit, not two; see RDBStorageHooks).
        return bool(self._interval())

    def stale_trial_ids(self, study_id: int) -> list[int]:
        now, beats = rdb_heartbeats(self, study_id, PROMISE_ATTR)
        stale = []
        for tid, (beat, promise) in beats.items():
            grace = self._grace_of(promise)
            if beat is not None and grace is not None and (now - beat).total_seconds() > grace:
                stale.append(tid)
        return stale


class HeartbeatJournalStorage(_Promising, JournalStorageHooks):
    """A journal storage whose running trials beat every ``heartbeat_interval`` seconds, on the storage's clock."""

    def __init__(
        self,
        backend,
        heartbeat_interval: int | None,
        grace_period: int | None = None,
        clock: Callable[[], float] | None = None,
    ):
        """``heartbeat_interval`` None: this worker never beats (and clears the promise of a retried trial it takes)."""
        check_interval(heartbeat_interval, grace_period)
        super().__init__(backend)
        self._heartbeat_interval = heartbeat_interval
        self._grace_period = grace_period or 2 * (heartbeat_interval or 0)
        self._stale_callback = retry_callback()
        self._guard = _GuardedBeat()
        self._clock = clock or storage_clock(backend)

    def _interval(self) -> int | None:
        return self._heartbeat_interval

    def _grace(self) -> float:
        return float(self._grace_period)

    def record_heartbeat(self, trial_id: int) -> None:
        self._guard(lambda t: self.set_trial_system_attr(t, BEAT_ATTR, self._clock()), trial_id)

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        created = super().create_new_trial(study_id, self._template(template_trial))
        if template_trial is None or template_trial.state == TrialState.RUNNING:
            self._first_beat(created)
        return created

    def stale_trial_ids(self, study_id: int) -> list[int]:
        now = self._clock()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = trial.system_attrs.get(BEAT_ATTR)
            grace = self._grace_of(trial.system_attrs.get(PROMISE_ATTR))
            # A retried trial copies its dead original's last beat: its own first beat replaces it at once.
            if isinstance(beat, (int, float)) and grace is not None and now - beat > grace:
                stale.append(trial_id(trial))
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._heartbeat_interval

    def get_heartbeat_stale_trial_callback(self):
        return self._stale_callback
