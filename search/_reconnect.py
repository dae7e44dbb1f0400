"""Waiting out a lost storage (a database restart, a dead link), and failing the trial it cut short."""

from __future__ import annotations

import os
import sys
import time

import optuna
from optuna.trial import FrozenTrial, TrialState

from search._errors import SearchError, is_storage_error, storage_cause
from search._optuna import study_storage
from search._signals import INTERRUPTS
from search.storages import redact, scrub
from search.storages._heartbeat import retry_callback

# How long a worker waits for a storage that went away (a database restart) before giving up.
RECONNECT_SECONDS = float(os.environ.get("SEARCH_RECONNECT_SECONDS", "120"))
_POLL_SECONDS = 2.0  # between looks at a storage that went away


def wait_for_storage(study: optuna.Study, url: str, exc: BaseException) -> None:
    """Wait for the storage to answer again; a `SearchError` if it does not in time."""
    said = str(storage_cause(exc)).strip().splitlines()
    print(f"search: lost the storage {redact(url)} ({scrub(said[0] if said else type(exc).__name__, url)}); "
          "reconnecting...", file=sys.stderr, flush=True)
    deadline = time.monotonic() + RECONNECT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
        INTERRUPTS.check()
        try:
            study.get_trials(deepcopy=False)
            print("search: the storage is back; the study goes on", file=sys.stderr, flush=True)
            return
        except Exception as again:  # noqa: BLE001 - any failure here means "not yet"
            if not is_storage_error(again):
                raise
    raise SearchError(
        f"the storage {redact(url)} has not answered for {RECONNECT_SECONDS:.0f}s; "
        "the finished trials are stored; continue the study when it is back"
    ) from exc


def recorded_anyway(study: optuna.Study, trial_id: int | None) -> FrozenTrial | None:
    """The trial this worker was telling when the storage went away, if the storage has it finished after all.

    A write can reach the database and its answer be lost (a read timeout on a loaded server, a
    link that dropped after the commit). Counted as not done, the run would do a trial more than asked.
    """
    if trial_id is None:
        return None
    trial = study_storage(study).get_trial(trial_id)
    return trial if trial.state in (TrialState.COMPLETE, TrialState.PRUNED) else None


def fail_own_trial(study: optuna.Study, trial_id: int | None, reason: str) -> None:
    """Fail the trial this worker was running when the storage went away, and queue it again."""
    if trial_id is None:
        return
    storage = study_storage(study)
    trial = storage.get_trial(trial_id)
    if trial.state != TrialState.RUNNING:
        return  # Optuna managed to record it, or a heartbeat check got there first
    try:
        storage.set_trial_user_attr(trial_id, "error", reason)
        storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return  # another worker's stale-trial check failed it (and re-queued it) a moment ago
    retry_callback()(study, storage.get_trial(trial_id))


def taken_over(study: optuna.Study, trial_id: int | None, exc: BaseException) -> bool:
    """Whether ``exc`` means another worker failed this worker's running trial (its heartbeat looked stale:
    a long pause, a link down past the grace period); if so, says so in one line.

    Optuna then refuses to record the trial ("Cannot tell a FAIL trial", or its own assertion
    when the trial's end cannot be told); the worker has nothing to mend and goes on.
    """
    if trial_id is None or is_storage_error(exc):
        return False
    try:
        trial = study_storage(study).get_trial(trial_id)
    except Exception:  # noqa: BLE001 - the storage cannot say: not a case this function decides
        return False
    if trial.state != TrialState.FAIL or "error" in trial.user_attrs:
        return False
    print(f"search: trial {trial.number} was failed by another worker while this one ran it (its heartbeat looked "
          "stale: a long pause, or a lost link); its parameters are queued again, and this worker goes on",
          file=sys.stderr, flush=True)
    return True


def requeue_interrupted(study: optuna.Study, trial_id: int | None) -> None:
    """Queue the parameters of the trial a Ctrl-C (or SIGTERM) cut short, so the study's next run runs them first
    (as Optuna's `RetryFailedTrialCallback` does for a killed worker's trial)."""
    if trial_id is None:
        return
    try:
        trial = study_storage(study).get_trial(trial_id)
        if trial.state == TrialState.FAIL:
            retry_callback()(study, trial)
    except Exception as exc:  # noqa: BLE001 - the interrupt is what the user asked for; this is only a courtesy
        if not is_storage_error(exc):
            raise
