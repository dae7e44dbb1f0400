"""Trials trained together: a worker keeps several trials training as one model, and tells each as it ends.

Optuna's ask-and-tell. The first trial of a group is sampled in full; the group's size for its shape is
measured (`search.study._fusion`); the trials that join it take its shape (the model's parameters, the batch
size and loss, which one batched model must share) and sample the rest themselves (learning rate, optimizer,
momentum, weight decay, epochs), with TPE's constant liar telling the sampler of the trials still running.
A trial that ends is told at once, and a new one joins in its place at the next epoch, so the group stays
full and the sampler learns from each ending as it would from parallel workers. After `ROUNDS` times its
size, a group takes no more: a new first trial samples a new shape, and the old group finishes beside it.
A trial queued with values of its own (the baseline, a warm start, a retry) keeps them, and trains alone if
its shape differs. Each trial runs under its own heartbeat and is told as `study.optimize` tells one.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives import Objective
from objectives._members import Member, Together
from search._errors import BudgetSpent
from search._optuna import fail_stale_trials, heartbeat_thread, share_params, study_storage, trial_id
from search.storages._buffer import write_now
from search.study._fusion import ROUNDS, Fusion
from search.study._reconnect import taken_over


class _Group:
    def __init__(self, objective: Objective, first: Member, size: int) -> None:
        self.size, self.taken = size, 0
        self.shape = {k: v for k, v in first.trial.params.items() if k in objective.space.shape_keys}
        self.kind = first.shape
        self.together = Together(objective) if size > 1 else None
        self.alone: list[Member] = []

    @property
    def open(self) -> bool:
        return self.taken < ROUNDS * self.size

    @property
    def count(self) -> int:
        return len(self.alone) + (len(self.together.members) if self.together is not None else 0)

    def add(self, member: Member) -> None:
        self.taken += 1
        if self.together is not None and member.shape == self.kind:
            self.together.join(member)
        else:  # a queued trial of another shape, or a group of one: it trains alone
            self.alone.append(member)

    def epoch(self, objective: Objective) -> list[tuple[Member, Any]]:
        ended = [(m, _alone(objective, m)) for m in self.alone]
        self.alone.clear()
        if self.together is not None and self.together.members:
            ended += self.together.epoch()
        return ended


def run_together(
    study: optuna.Study,
    objective: Objective,
    fusion: Fusion,
    more: Callable[[], bool],
    callback: Callable[[optuna.Study, FrozenTrial], None],
    running: list[int],
    give_back: Callable[[], None],
) -> None:
    """Train trials together until ``more()`` (asked before each trial: the run's count, its time, its share
    of a budget) says no and the last one has ended; ``running``: the ids of this worker's trials not yet told.
    A trial the study's budget lacks gives its ``more()`` back (``give_back``) and ends the asking."""
    groups: list[_Group] = []
    beats: dict[int, Any] = {}
    asking = True
    try:
        while True:
            checked, asked = False, len(running)
            while asking and sum(g.count for g in groups) < (groups[-1].size if groups else 1):
                if not more():
                    asking = False
                    break
                if not checked:  # once a round of asking, as `study.optimize` does once a trial
                    fail_stale_trials(study)
                    checked = True
                try:
                    _ask_into(study, objective, fusion, groups, running, beats)
                except BudgetSpent:
                    give_back()
                    asking = False
            for trial in running[asked:]:
                # Its parameters stored before it trains: once any trial of a group shows them, all do, and a
                # trial another host fails when this one dies goes again with the parameters it had.
                _store(study, trial)
            if not groups:
                return
            for group in list(groups):
                for member, outcome in group.epoch(objective):
                    beats.pop(trial_id(member.trial)).__exit__(None, None, None)
                    _tell(study, member.trial, outcome, running, callback)
                if not group.count and not (group is groups[-1] and group.open and asking):
                    groups.remove(group)
    except KeyboardInterrupt:  # as `study.optimize` does: each trial cut short is failed (the run queues it again)
        _fail_untold(study, running)
        raise
    finally:
        for beat in beats.values():
            beat.__exit__(None, None, None)


def _ask_into(study, objective: Objective, fusion: Fusion, groups: list[_Group], running, beats) -> None:
    """One trial more: into the newest group while it takes more, else the first of a new group."""
    newest = groups[-1] if groups else None
    shape = newest.shape if newest is not None and newest.open else None
    member = _begin(study, objective, running, shape)
    _beat(study, member.trial, beats)
    if shape is None:
        newest = _Group(objective, member, fusion.size(objective, member))
        groups.append(newest)
    newest.add(member)


def _begin(study: optuna.Study, objective: Objective, running: list[int], shape: dict | None) -> Member:
    trial = _ask(study, running)
    if shape:
        share_params(trial, shape)
    return objective.begin(trial)


def _ask(study: optuna.Study, running: list[int]) -> optuna.Trial:
    """A trial asked for (the queue's next, else a new one), counted as this worker's until it is told."""
    with warnings.catch_warnings():  # Optuna warns that a heartbeat storage is meant for `study.optimize`
        warnings.simplefilter("ignore", UserWarning)
        trial = study.ask()
    running.append(trial_id(trial))
    return trial


def _beat(study: optuna.Study, trial: optuna.Trial, beats: dict[int, Any]) -> None:
    """The trial's heartbeat started, as `study.optimize` starts one; it stops when the trial is told."""
    beats[trial_id(trial)] = beat = heartbeat_thread(trial, study_storage(study))
    beat.__enter__()


def _store(study: optuna.Study, trial: int) -> None:
    """What the buffer holds for ``trial`` written now. Refused, another worker failed it already (its heartbeat
    looked stale); its first report meets the same refusal, and it leaves its group then."""
    with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
        write_now(study_storage(study), trial)


def _alone(objective: Objective, member: Member) -> Any:
    try:
        return objective.train(member)
    except (optuna.TrialPruned, RuntimeError) as exc:
        return exc


def _fail_untold(study: optuna.Study, running: list[int]) -> None:
    storage = study_storage(study)
    for trial in running:
        with contextlib.suppress(Exception):  # a trial a storage fault keeps RUNNING is the heartbeat's to mend
            storage.set_trial_state_values(trial, TrialState.FAIL)


def _tell(study, trial, outcome: Any, running: list[int], callback) -> None:
    """Tell ``trial`` its outcome as `study.optimize` tells one: pruned, failed (its error on record) or its values;
    a trial another worker failed meanwhile (its report refused, or its tell) is that worker's, and left alone."""
    try:
        if isinstance(outcome, optuna.exceptions.UpdateFinishedTrialError):
            raise outcome  # its report was refused: another worker failed it (taken_over says so below)
        if isinstance(outcome, optuna.TrialPruned):
            told = study.tell(trial, state=TrialState.PRUNED)
        elif isinstance(outcome, BaseException):
            trial.set_user_attr("error", (str(outcome).strip().splitlines() or [type(outcome).__name__])[0][:500])
            told = study.tell(trial, state=TrialState.FAIL)
        else:
            told = study.tell(trial, outcome)
    except (ValueError, AssertionError, optuna.exceptions.UpdateFinishedTrialError) as exc:
        if not taken_over(study, trial_id(trial), exc):
            raise
        running.remove(trial_id(trial))
        return
    callback(study, told)  # the trial as stored, read once more by Optuna's tell


def drain_together(
    study: optuna.Study,
    begin: Callable[[optuna.Trial], tuple[Objective, Member]],
    fusion: Fusion,
    waiting: Callable[[], int],
    callback: Callable[[optuna.Study, FrozenTrial], None],
    running: list[int],
) -> None:
    """Run a study's queued trials (a confirmation's retrains) until ``waiting()`` says none is left, a batch at a
    time: those on one data set (``begin(trial)`` gives each one's objective and member, or raises
    ``optuna.TrialPruned``) and of one shape train together, as many as `Fusion` sizes their group."""
    while (left := waiting()) > 0:
        groups: dict[tuple, tuple[Objective, list[Member]]] = {}
        beats: dict[int, Any] = {}
        size = left
        try:
            while sum(len(m) for _, m in groups.values()) < min(size, left):
                trial = _ask(study, running)
                try:
                    objective, member = begin(trial)
                except optuna.TrialPruned as exc:
                    _tell(study, trial, exc, running, callback)
                    left -= 1
                    continue
                _beat(study, trial, beats)
                if not groups:  # the first of the batch sizes it, as a search's first trial sizes its group
                    size = fusion.size(objective, member) if fusion.why_not(objective, member) is None else 1
                groups.setdefault((id(objective), member.shape), (objective, []))[1].append(member)
            for _, members in groups.values():
                for member in members:  # stored before they train, as a search's trials are
                    _store(study, trial_id(member.trial))
            for objective, members in groups.values():
                for member, outcome in _train_all(objective, members):
                    beats.pop(trial_id(member.trial)).__exit__(None, None, None)
                    _tell(study, member.trial, outcome, running, callback)
        except KeyboardInterrupt:
            _fail_untold(study, running)
            raise
        finally:
            for beat in beats.values():
                beat.__exit__(None, None, None)


def _train_all(objective: Objective, members: list[Member]):
    """Each member's end, as it comes: alone if it is the only one, else all of them as one model."""
    if len(members) == 1:
        yield members[0], _alone(objective, members[0])
        return
    together = Together(objective)
    for member in members:
        together.join(member)
    while together.members:
        yield from together.epoch()
