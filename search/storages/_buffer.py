"""A running trial's parameters, user attributes and epoch reports, held in memory and written together.

Optuna writes each sampled parameter, each user attribute and each epoch's report as a call
of its own: on an RDB storage a transaction each (on SQLite an fsync each), so a short trial
on a table waited more on its storage than it trained. This buffer, put on a study's storage
by the worker that runs the trials, holds those writes for the trials this worker runs and
writes them

- with the trial's first epoch report (so a trial in training shows its parameters and first
  epoch at once, in the dashboard and to anything waiting for it), together with everything
  set before it;
- then at most every `FLUSH_SECONDS` (a long trial's curve stays live);
- and just before the trial's end is written (Optuna's own write, which the fault handling
  knows); in one transaction on an RDB storage, in one append on a journal.

Why deferring them changes no decision: the median and percentile pruners read only
COMPLETE trials' reports, successive halving and Hyperband keep their rungs in system
attributes (never held), and TPE's constant liar reads a running trial's sampled point from
the system attribute TPE writes as it samples (never held; plain parameters until the first
report are the few it samples independently). This worker's own reads of its trial
(Optuna's ``should_prune`` and ``tell``) see the held values. What a killed worker loses is
its running trial's unwritten reports: that trial is failed and run again anyway.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from optuna.storages import BaseStorage, JournalStorage
from optuna.trial import FrozenTrial, TrialState

from search._optuna import storage_backend, trial_id, write_journal_logs, write_trial_attrs
from search.storages._conflicts import rerun_on_conflict

FLUSH_SECONDS = 10.0


@dataclass
class _Pending:
    params: dict[str, tuple[float, Any]] = field(default_factory=dict)  # name: (internal value, distribution)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    intermediate: dict[int, float] = field(default_factory=dict)
    flushed: float = 0.0  # time.monotonic() of the last write; 0: none yet
    reported: bool = False  # the first epoch report has been written

    @property
    def holding(self) -> bool:
        """Whether anything is held, not yet written."""
        return bool(self.params or self.user_attrs or self.intermediate)


class TrialWriteBuffer:
    """Put on ``storage`` (its methods replaced on the instance, as the storage clock does)."""

    def __init__(self, storage: BaseStorage, clock: Any = None, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.storage, self.clock, self.flush_seconds = storage, clock, flush_seconds
        self.owner = threading.get_ident()
        self.pending: dict[int, _Pending] = {}
        backend = storage_backend(storage)
        # An RDB storage writes the lot in one transaction, a journal in one append; a proxy a call each.
        self._batch = (
            "rdb" if hasattr(backend, "scoped_session") else "journal" if isinstance(backend, JournalStorage) else None
        )
        self._backend = backend
        self._set_param = storage.set_trial_param
        self._set_user_attr = storage.set_trial_user_attr
        self._set_intermediate = storage.set_trial_intermediate_value
        self._set_state = storage.set_trial_state_values
        self._create = storage.create_new_trial
        self._get_trial = storage.get_trial
        self._get_all = storage.get_all_trials
        storage.set_trial_param = self.set_trial_param
        storage.set_trial_user_attr = self.set_trial_user_attr
        storage.set_trial_intermediate_value = self.set_trial_intermediate_value
        storage.set_trial_state_values = self.set_trial_state_values
        storage.create_new_trial = self.create_new_trial
        storage.get_trial = self.get_trial
        storage.get_all_trials = self.get_all_trials

    # Which trials are this worker's: those it creates, or takes from the queue, in its trial thread.
    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        created = self._create(study_id, template_trial)
        if threading.get_ident() == self.owner and (
            template_trial is None or template_trial.state == TrialState.RUNNING
        ):
            self.pending[created] = _Pending()
        return created

    def set_trial_state_values(self, tid: int, state: TrialState, values=None) -> bool:
        if state == TrialState.RUNNING:
            taken = self._set_state(tid, state, values)
            if taken and threading.get_ident() == self.owner:
                self.pending[tid] = _Pending()
            return taken
        if state.is_finished() and tid in self.pending:
            # The end itself is Optuna's own write (its checks, and what the fault handling knows of it).
            self.flush(tid)  # kept on an error: a retried tell writes them then
            del self.pending[tid]
        return self._set_state(tid, state, values)

    def set_trial_param(self, tid: int, name: str, value: float, distribution: Any) -> None:
        held = self.pending.get(tid)
        if held is None:
            return self._set_param(tid, name, value, distribution)
        held.params[name] = (value, distribution)

    def set_trial_user_attr(self, tid: int, key: str, value: Any) -> None:
        held = self.pending.get(tid)
        if held is None:
            return self._set_user_attr(tid, key, value)
        held.user_attrs[key] = value
        self._maybe_flush(tid, held)

    def set_trial_intermediate_value(self, tid: int, step: int, intermediate_value: float) -> None:
        held = self.pending.get(tid)
        if held is None:
            return self._set_intermediate(tid, step, intermediate_value)
        held.intermediate[step] = intermediate_value
        if not held.reported:
            held.reported = True
            self.flush(tid)
        else:
            self._maybe_flush(tid, held)

    def _maybe_flush(self, tid: int, held: _Pending) -> None:
        if held.flushed and time.monotonic() - held.flushed >= self.flush_seconds:
            self.flush(tid)

    def flush(self, tid: int) -> None:
        """Write what is held for the trial: one transaction on an RDB storage, one append on a journal, else a
        call each."""
        held = self.pending[tid]
        if held.holding:
            if self._batch == "rdb":
                self._timed(
                    rerun_on_conflict,
                    write_trial_attrs,
                    self._backend,
                    tid,
                    held.user_attrs,
                    held.intermediate,
                    held.params,
                )
            elif self._batch:
                self._timed(write_journal_logs, self._backend, tid, held.user_attrs, held.intermediate, held.params)
            else:
                for name, (value, distribution) in held.params.items():
                    self._set_param(tid, name, value, distribution)
                for key, value in held.user_attrs.items():
                    self._set_user_attr(tid, key, value)
                for step, value in held.intermediate.items():
                    self._set_intermediate(tid, step, value)
            held.params, held.user_attrs, held.intermediate = {}, {}, {}
        held.flushed = time.monotonic()

    # Reads of a trial this worker holds writes for see them.
    def get_trial(self, trial_id: int) -> FrozenTrial:
        return self._merged(self._get_trial(trial_id))

    def get_all_trials(self, study_id: int, deepcopy: bool = True, states=None) -> list[FrozenTrial]:
        if self._batch == "rdb" and states is not None and set(states) == {TrialState.WAITING}:
            return self._queued(study_id)
        trials = self._get_all(study_id, deepcopy=deepcopy, states=states)
        if not any(held.holding for held in list(self.pending.values())):
            return trials
        return [self._merged(t) for t in trials]

    def _queued(self, study_id: int) -> list[FrozenTrial]:
        """The study's queued trials, as the database has them now. Optuna's ask looks for one before each
        trial; its cache in front of an RDB storage would read every unfinished trial again to answer, where
        one query for the queued ones does (none, mostly). (Taking one stays Optuna's atomic write.)"""
        return self._timed(self._backend.get_all_trials, study_id, deepcopy=False, states=(TrialState.WAITING,))

    def _timed(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """``call`` made beside the storage's timed methods (on its backend), counted by the storage clock."""
        started = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            if self.clock is not None:
                self.clock.count_call(time.perf_counter() - started)

    def _merged(self, trial: FrozenTrial) -> FrozenTrial:
        held = self.pending.get(trial_id(trial))
        if held is None or not held.holding:
            return trial
        merged = copy.copy(trial)
        if held.params:
            merged.params = {
                **trial.params,
                **{n: d.to_external_repr(v) for n, (v, d) in held.params.items()},
            }
            merged.distributions = {**trial.distributions, **{n: d for n, (_, d) in held.params.items()}}
        merged.user_attrs = {**trial.user_attrs, **held.user_attrs}
        merged.intermediate_values = {**trial.intermediate_values, **held.intermediate}
        return merged


def attach(storage: BaseStorage, clock: Any = None) -> TrialWriteBuffer:
    """The buffer on ``storage``, made on first use (after the storage clock, which then times what it writes)."""
    buffer = getattr(storage, "_search_buffer", None)
    if buffer is None:
        buffer = TrialWriteBuffer(storage, clock)
        storage._search_buffer = buffer  # type: ignore[attr-defined]
    return buffer


def forget(storage: BaseStorage, tid: int) -> None:
    """Drop what the buffer holds for trial ``tid``: another worker finished the trial, which takes no more writes."""
    buffer = getattr(storage, "_search_buffer", None)
    if buffer is not None:
        buffer.pending.pop(tid, None)


def write_now(storage: BaseStorage, tid: int) -> None:
    """Write what the buffer holds for trial ``tid`` now (a checkpoint's mark must be stored before the checkpoint
    it replaces goes, with the reports up to it)."""
    buffer = getattr(storage, "_search_buffer", None)
    if buffer is not None and tid in buffer.pending:
        buffer.flush(tid)
