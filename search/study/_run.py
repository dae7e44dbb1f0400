"""The run loop: check everything, open the storage, create or join a study, run its trials.

A refused run changes nothing: every check (flags, the study's record, the data) happens
before the first write. While trials run, a storage that goes away is waited for
(`search.study._reconnect`), and the trial it cut short is failed and queued again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from objectives import EpochResult, Objective, SearchSpace, Splits, load_splits
from objectives.models import ModelSpec, check_model
from search._errors import BudgetSpent, RunStopped, SearchError, is_storage_error, storage_fault
from search._optuna import keep_trials_in_order, only_queued_trials, study_storage, trial_id
from search.storages import open_storage, redact, resolve_storage_url, storage_exists
from search.storages._buffer import attach as attach_buffer
from search.storages._clock import attach as attach_clock
from search.study._config import RunConfig
from search.study._continue import continue_config
from search.study._costs import fixed_size_note
from search.study._fusion import fusion_for
from search.study._open import model_defaults, open_study
from search.study._pruners import make_pruner
from search.study._reconnect import (
    asked_but_lost,
    fail_own_trial,
    mend_if_writable,
    recorded_anyway,
    requeue_interrupted,
    taken_over,
    wait_for_storage,
)
from search.study._record import (
    load_space,
    recorded,
    space_differences,
    study_metadata,
)
from search.study._samplers import make_sampler, sampler_seed
from search.study._signals import INTERRUPTS, Interrupted
from search.study._summary import RunSummary, summarize_safely
from search.study._together import run_together
from search.tracking import data_tags, open_tracking


@dataclass
class Prepared:
    """What a run works with, all checked before the first write."""

    config: RunConfig  # with a continued study's record filled in
    space: SearchSpace
    objective: Objective
    url: str
    study: optuna.Study
    created: bool = False  # this process made the study (of workers starting at once, exactly one does)
    storage: Any = None  # the storage opened (under Optuna's cache, for RDB storages)


def prepare(
    config: RunConfig,
    on_epoch=None,
    splits: Splits | None = None,
    run_attrs: dict | None = None,
    on_note: Callable[[str], None] | None = None,
) -> Prepared:
    """Everything a run needs, checked before the first write, so a refused run changes nothing."""
    url = resolve_storage_url(config.storage)
    # A storage file not made yet holds no study, and a refused run must not create it.
    storage = open_storage(url, heartbeat=config.heartbeat or None) if storage_exists(url) else None
    made = recorded(storage, config.study) if storage is not None else None
    if made is not None:
        config = continue_config(config, config.study, made)
    config.data.check_applies(config.given)
    splits = splits if splits is not None else load_splits(config.data)
    for note in splits.notes if on_note is not None else ():
        on_note(note)
    space = load_space(config, made.get("space") if made else None, splits.pool_rows)
    warm: list = []
    if config.warm_start and made is None:  # read now: a refused run changes nothing
        from search.study._warm import warm_trials

        warm, left_out = warm_trials(config, space)
        for line in left_out if on_note is not None else ():
            on_note(line)
    metadata = study_metadata(config, space, splits.pool_rows)
    if made is not None and load_space(config, made["space"], splits.pool_rows).to_dict() != metadata["space"]:
        raise SearchError(
            f"study {config.study!r} was made with another search space ({space_differences(made['space'], metadata['space'])}); "
            "leave `space` and `max_epochs` out to continue it, or choose another `study` name"
        )
    size_note = fixed_size_note(space, config.costs)
    if size_note and on_note is not None:
        on_note(size_note)
    # The model function is imported, called and run on two rows now: a bad one stores nothing.
    check_model(
        ModelSpec(config.model, space.model_values(model_defaults(config.model))),
        splits.input_shape,
        splits.num_outputs,
    )
    objective = Objective(
        space,
        config.data,
        config.device,
        config.seed,
        on_epoch=on_epoch,
        splits=splits,
        stop=INTERRUPTS.stop_requested,
        run_attrs=run_attrs,
        metric=config.metric_spec.name,
        costs=config.costs,
    )
    encoder = objective.splits.encoder
    if "table" in metadata and encoder is not None:  # export and the report name them
        metadata["table"]["columns"] = {"numeric": encoder["numeric"], "text": encoder["text"]}
    if storage is None:
        storage = open_storage(url, heartbeat=config.heartbeat or None)
    study, created = open_study(storage, config, metadata, warm)
    return Prepared(config, space, objective, url, study, created, storage)


def new_run_attrs(config: RunConfig) -> dict[str, Any]:
    """What every trial of this run records about it (the ``run`` user attribute)."""
    return {
        "id": uuid.uuid4().hex[:12],
        "sampler": config.sampler,
        "pruner": config.pruner_name,
        "host": socket.gethostname(),
        "jobs": config.jobs or 1,
        "threads": config.threads,
    }


def run_study(
    config: RunConfig,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    on_epoch: Callable[[optuna.Trial, EpochResult], None] | None = None,
    worker: int = 0,
    splits: Splits | None = None,
    run_attrs: dict[str, Any] | None = None,
    on_note: Callable[[str], None] | None = None,
    tickets: Any = None,
) -> RunSummary:
    """Run ``config.n_trials`` more trials of ``config.study`` in this process, creating it if new.

    ``on_note`` hears what the user should know about the data (a constant column left out, say).
    ``tickets`` (`search.workers._processes.Tickets`): the trials a run of several worker processes still
    owes; this worker takes one before each trial, so a worker that started late does fewer.
    """
    run = prepare(config, on_epoch, splits, run_attrs or new_run_attrs(config), on_note)
    config, study, url, objective = run.config, run.study, run.url, run.objective

    study.sampler = make_sampler(
        config.sampler,
        sampler_seed(
            config.seed,
            len(study.get_trials(deepcopy=False)),
            worker,
            None if run.created else objective.run_attrs["id"],
        ),
    )
    study.pruner = make_pruner(config.pruner_name, run.space.max_epochs)
    # Recorded on every trial: what actually sampled and pruned it, not only the names asked for.
    objective.run_attrs = {
        **(objective.run_attrs or {}),
        "sampler_class": type(getattr(study.sampler, "inner", study.sampler)).__name__,
        "pruner_class": type(getattr(study.pruner, "inner", study.pruner)).__name__,
    }

    tags = {"search.study": config.study, "search.run": objective.run_attrs["id"], **data_tags(config.data)}
    tracking = open_tracking(config.tracking, url, config.study, config.metric_spec.name, tags)
    tracking.attach(objective)
    finished: list[FrozenTrial] = []
    running: list[int] = []  # the ids of this worker's trials asked and not yet told
    if config.total_trials:  # every trial comes from the budget's queue; an empty queue ends the run
        only_queued_trials(study, BudgetSpent)

    def collect(study: optuna.Study, trial: FrozenTrial) -> None:
        finished.append(trial)
        if trial_id(trial) in running:
            running.remove(trial_id(trial))
        if tickets is not None:
            tickets.finished()
        tracking.trial(study, trial)
        if on_trial is not None:
            on_trial(study, trial)
        INTERRUPTS.check()  # a Ctrl-C during the trial's last steps or its tell stops here

    def tracked(trial: optuna.Trial) -> float:
        running[:] = [trial_id(trial)]
        try:
            return objective(trial)
        except RuntimeError as exc:  # the trial fails alone; its reason goes on record
            trial.set_user_attr("error", (str(exc).strip().splitlines() or [type(exc).__name__])[0][:500])
            raise

    trials = config.total_trials or config.n_trials
    workers = objective.run_attrs.get("jobs") or 1  # the run's, as recorded: a worker's own config says 1
    per_worker = None if trials is None else -(-trials // workers)

    def more() -> bool:  # whether a trial more is the run's: its count, its time, a ticket of its workers' share
        if config.n_trials is not None and len(finished) + len(running) >= config.n_trials:
            return False
        if config.timeout is not None and time.perf_counter() - started >= config.timeout:
            return False
        return tickets.take() if tickets is not None else True

    def give_back() -> None:
        if tickets is not None:
            tickets.give_back()

    fusion = fusion_for(config.fuse, objective, model_defaults(config.model), on_note, per_worker)
    keep_trials_in_order(study_storage(study))  # before the clock, which then times it
    clock = attach_clock(study_storage(study))
    attach_buffer(study_storage(study), clock)  # after the clock: it times the writes that reach the storage
    started, before = time.perf_counter(), clock.time(0.0)
    with INTERRUPTS.deferred(), contextlib.closing(tracking):
        while True:
            INTERRUPTS.check()
            left = None if config.n_trials is None else config.n_trials - len(finished)
            time_left = None if config.timeout is None else config.timeout - (time.perf_counter() - started)
            if left == 0 or (time_left is not None and time_left <= 0):
                break
            if fusion is None and tickets is not None and not tickets.take():
                break
            try:
                if fusion is not None:  # trials trained together until the run's are done
                    run_together(study, objective, fusion, more, collect, running, give_back)
                    break
                optimize(study, tracked, 1 if tickets is not None else left, time_left, collect)
                if tickets is None:
                    break
                continue
            except BudgetSpent:
                if tickets is not None:
                    tickets.give_back()  # a ticket this worker took for a trial the budget did not have
                break
            except KeyboardInterrupt:
                for cut in running:
                    requeue_interrupted(study, cut)
                raise Interrupted(len(finished), len(running)) from None
            except Exception as exc:
                cut, lost = list(running), is_storage_error(exc)
                running.clear()
                for _ in range(max(1, len(cut)) if tickets is not None and not lost else 0):
                    tickets.give_back()  # the trials it cut short are not the run's
                if len(cut) == 1 and taken_over(study, cut[0], exc):
                    continue  # that trial is another worker's business now; this worker goes on
                fault = storage_fault(exc)
                if fault is not None:  # waiting mends nothing: stop now, the stored trials are intact
                    for trial in cut:
                        mend_if_writable(study, trial, fault)
                    raise RunStopped(
                        f"storage {redact(url)}: {fault} (make room, or make it writable, then continue the study)",
                        len(finished),
                    ) from exc
                if not lost:
                    raise
                wait_for_storage(study, url, exc)
                # Lost while its trial was made: it may be stored, with no worker.
                for trial in cut or [asked_but_lost(study)]:
                    stored = recorded_anyway(study, trial)
                    if stored is not None:  # its tell reached the storage, only the answer was lost: one of the run's
                        collect(study, stored)
                        continue
                    if tickets is not None:
                        tickets.give_back()
                    fail_own_trial(study, trial, "the storage connection was lost")
        wall = time.perf_counter() - started
        summary = summarize_safely(study, url, wall, finished, objective.splits.train_x.shape[0], config.confirm.pick)
        return dataclasses.replace(summary, storage_time=clock.time(wall, since=before))


def optimize(study, objective, n_trials, timeout, callback) -> None:
    with warnings.catch_warnings():
        # Optuna warns per trial for each fixed categorical it cannot model; noise to a user.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.optimize(
            objective,
            n_trials=n_trials,
            timeout=timeout,
            callbacks=[callback],
            catch=(RuntimeError,),  # a failing trial (out of memory, say) fails alone
            gc_after_trial=False,
        )
