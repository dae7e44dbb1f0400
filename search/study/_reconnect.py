"""Waiting out a lost storage (a database restart, a dead link), and failing the trial it cut short."""

from __future__ import annotations

import os
import sys
import time

import optuna
from optuna.trial import FrozenTrial, TrialState

from search._errors import ERROR_ATTR, SearchError, is_storage_error, storage_cause
from search._optuna import storage_backend, study_id, study_storage
from search.storages import redact, scrub
from search.storages._buffer import forget
from search.storages._heartbeat import retry_callback
from search.study._signals import INTERRUPTS

# How long a worker waits for a storage that went away (a database restart) before giving up.
RECONNECT_SECONDS = float(os.environ.get("SEARCH_RECONNECT_SECONDS", "120"))
_POLL_SECONDS = 2.0  # between looks at a storage that went away


def wait_for_storage(study: optuna.Study, url: str, exc: BaseException) -> None:
    """Wait for the storage to answer again; a `SearchError` if it does not in time."""
    said = str(storage_cause(exc)).strip().splitlines()
    print(
        f"search: lost the storage {redact(url)} ({scrub(said[0] if said else type(exc).__name__, url)}); "
        "reconnecting...",
        file=sys.stderr,
        flush=True,
    )
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


def asked_but_lost(study: optuna.Study) -> int | None:
    """The trial this worker's last creation stored though its answer was lost (see the storages' method)."""
    find = getattr(storage_backend(study_storage(study)), "asked_but_lost", None)
    return find(study_id(study)) if find is not None else None


def fail_own_trial(study: optuna.Study, trial_id: int | None, reason: str) -> None:
    """Fail the trial this worker was running when the storage went away, and queue it again."""
    if trial_id is None:
        return
    storage = study_storage(study)
    trial = storage.get_trial(trial_id)
    if trial.state == TrialState.FAIL and ERROR_ATTR not in trial.user_attrs and not _queued_again(study, trial):
        pass  # the storage failed inside the objective (a report, a parameter) and Optuna told FAIL itself
    elif trial.state != TrialState.RUNNING:
        return  # Optuna managed to record it, or a heartbeat check got there first (and queued it again)
    else:
        try:
            storage.set_trial_user_attr(trial_id, ERROR_ATTR, reason)
            storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            return  # another worker's stale-trial check failed it (and re-queued it) a moment ago
    if trial.params or trial.system_attrs.get(
        "fixed_params"
    ):  # one made and lost before sampling has nothing to re-run
        retry_callback()(study, storage.get_trial(trial_id))


def mend_if_writable(study: optuna.Study, trial_id: int | None, fault: str) -> None:
    """After a write fault, fail the cut trial and queue it again if the storage takes those writes now;
    else it stays RUNNING, for the heartbeat's stale rule to fail and queue it once it can."""
    try:
        fail_own_trial(study, trial_id, f"the storage could not be written: {fault}")
    except Exception:  # noqa: BLE001 - still unwritable: the stale rule mends it later
        pass


def _queued_again(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Whether a failed trial's parameters are queued (or ran) again already: Optuna's retry records its number."""
    return any(t.system_attrs.get("failed_trial") == trial.number for t in study.get_trials(deepcopy=False))


def taken_over(study: optuna.Study, trial_id: int | None, exc: BaseException) -> bool:
    """Whether ``exc`` means another worker failed this worker's running trial (its heartbeat looked stale:
    a long pause, a link down past the grace period); if so, says so in one line.

    Optuna then refuses to record the trial ("Cannot tell a FAIL trial", or its own assertion
    when the trial's end cannot be told); the worker has nothing to mend and goes on.
    """
    if trial_id is None or not _refused_tell(exc):
        return False
    try:
        trial = study_storage(study).get_trial(trial_id)
    except Exception:  # noqa: BLE001 - the storage cannot say: not a case this function decides
        return False
    if trial.state != TrialState.FAIL or ERROR_ATTR in trial.user_attrs:
        return False
    forget(study_storage(study), trial_id)  # what this worker still held for it is not the study's now
    print(
        f"search: trial {trial.number} was failed by another worker while this one ran it (its heartbeat looked "
        "stale: a long pause, or a lost link); its parameters are queued again, and this worker goes on",
        file=sys.stderr,
        flush=True,
    )
    return True


def _refused_tell(exc: BaseException) -> bool:
    """Whether ``exc`` is Optuna refusing to tell a trial that is finished already: its ValueError when the
    objective raised (a report on the failed trial, say), its assertion in the log of one that returned, or
    its refusal of a write to the trial (a member of a group trained together meets it at its next report).
    Any other error is the objective's own, and no reason to go on as if another worker had the trial."""
    said = str(exc)
    return (
        (isinstance(exc, ValueError) and said.startswith("Cannot tell a "))
        or (isinstance(exc, AssertionError) and said == "Should not reach.")
        or isinstance(exc, optuna.exceptions.UpdateFinishedTrialError)
    )


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
