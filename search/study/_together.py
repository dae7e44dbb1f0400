"""Trials trained together: a worker asks for several trials at once, trains them as one model, tells each.

Optuna's ask-and-tell: the first trial of a group is sampled in full; the others take its shape (the
model's parameters, the batch size and loss, which one batched model must share) and sample the rest
themselves (learning rate, optimizer, momentum, weight decay, epochs), with TPE's constant liar telling
the sampler of the trials still running. A trial queued with values of its own (the baseline, a warm
start, a retry) keeps them and trains in a group of its shape, alone if none shares it. Each trial is
told its own outcome, under its own heartbeat, as `study.optimize` tells one.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from objectives import Objective
from objectives._members import Member, train_together
from search._errors import BudgetSpent
from search._optuna import fail_stale_trials, heartbeat_thread, share_params, study_storage, trial_id
from search.study._fusion import Fusion
from search.study._reconnect import taken_over


def run_group(
    study: optuna.Study,
    objective: Objective,
    fusion: Fusion,
    most: int,
    callback: Callable[[optuna.Study, FrozenTrial], None],
    running: list[int],
    take: Callable[[], bool] = lambda: True,
    give_back: Callable[[], None] = lambda: None,
) -> None:
    """Ask up to ``most`` trials (the first already paid for; ``take`` pays for each further one, ``give_back``
    returns a payment the study's budget did not need), train them together and tell each; ``running`` holds the
    ids of this worker's trials not yet told. A first trial the budget lacks raises `BudgetSpent`."""
    members = [_begin(study, objective, running, None)]
    try:
        size = min(most, fusion.size(objective, members[0]))
        while len(members) < size and take():
            try:
                members.append(_begin(study, objective, running, _shape(objective, members[0])))
            except BudgetSpent:
                give_back()
                break
        storage = study_storage(study)
        with contextlib.ExitStack() as beats:
            for member in members:
                beats.enter_context(heartbeat_thread(member.trial, storage))
            outcomes = _train(objective, members)
    except KeyboardInterrupt:  # as `study.optimize` does: each trial cut short is failed (the run queues it again)
        _fail_untold(study, running)
        raise
    for member, outcome in zip(members, outcomes, strict=True):
        _tell(study, member.trial, outcome, running, callback)


def _fail_untold(study: optuna.Study, running: list[int]) -> None:
    storage = study_storage(study)
    for trial in running:
        with contextlib.suppress(Exception):  # a trial a storage fault keeps RUNNING is the heartbeat's to mend
            storage.set_trial_state_values(trial, optuna.trial.TrialState.FAIL)


def _begin(study: optuna.Study, objective: Objective, running: list[int], shape: dict | None) -> Member:
    fail_stale_trials(study)
    with warnings.catch_warnings():  # Optuna warns that a heartbeat storage is meant for `study.optimize`
        warnings.simplefilter("ignore", UserWarning)
        trial = study.ask()
    running.append(trial_id(trial))
    if shape:
        share_params(trial, shape)
    return objective.begin(trial)


def _shape(objective: Objective, first: Member) -> dict[str, Any]:
    """The first member's values of the parameters its companions must share."""
    return {k: v for k, v in first.trial.params.items() if k in objective.space.shape_keys}


def _train(objective: Objective, members: list[Member]) -> list[Any]:
    """Each member's outcome (its value or values, or the exception it ended with), members of one shape as one."""
    groups: dict[tuple, list[int]] = {}
    for i, member in enumerate(members):
        groups.setdefault(member.shape, []).append(i)
    outcomes: list[Any] = [None] * len(members)
    for indices in groups.values():
        if len(indices) == 1:
            outcomes[indices[0]] = _alone(objective, members[indices[0]])
            continue
        for i, outcome in zip(indices, train_together(objective, [members[i] for i in indices]), strict=True):
            outcomes[i] = outcome
    return outcomes


def _alone(objective: Objective, member: Member) -> Any:
    try:
        return objective.train(member)
    except (optuna.TrialPruned, RuntimeError) as exc:
        return exc


def _tell(study, trial, outcome: Any, running: list[int], callback) -> None:
    """Tell ``trial`` its outcome as `study.optimize` tells one: pruned, failed (its error on record) or its values."""
    try:
        if isinstance(outcome, optuna.TrialPruned):
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        elif isinstance(outcome, BaseException):
            trial.set_user_attr("error", (str(outcome).strip().splitlines() or [type(outcome).__name__])[0][:500])
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, outcome)
    except (ValueError, AssertionError) as exc:
        if not taken_over(study, trial_id(trial), exc):
            raise
        running.remove(trial_id(trial))
        return
    callback(study, study_storage(study).get_trial(trial_id(trial)))
