"""Confirmation's orchestration: open the searched study, queue each round's retrains, run them, store the summary."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives import SearchSpace

from search._config import RunConfig
from search._errors import SearchError, is_storage_error
from search._optuna import trial_id
from search._reconnect import fail_own_trial, wait_for_storage
from search._record import continue_config, recorded
from search._run import optimize
from search._processes import EXIT_INTERRUPTED, run_processes, worker_setup
from search._signals import INTERRUPTS
from search.confirmation._config import DEFAULT_CANDIDATES
from search.confirmation._plan import confirmation_study, enqueue_round, leaders, results, store_summary
from search.confirmation._retrain import Retrain
from search.confirmation._rules import replay
from search.storages import open_storage, redact, resolve_storage_url, storage_exists


@dataclass(frozen=True)
class ConfirmContext:
    """What a confirmation works on, read from the searched study."""

    config: RunConfig  # the study's own data set, split and seed
    url: str
    study: optuna.Study
    confirm: optuna.Study
    space: SearchSpace
    top: list[FrozenTrial]


def open_confirmation(config: RunConfig, candidates: int) -> ConfirmContext:
    """The searched study (it must exist), its leaders and the study of their retrains."""
    url = resolve_storage_url(config.storage)
    if not storage_exists(url):
        raise SearchError(f"no study {config.study!r} in {redact(url)}; run it first with: search run --study {config.study}")
    storage = open_storage(url, heartbeat=config.heartbeat or None)
    made = recorded(storage, config.study)
    if made is None:
        raise SearchError(f"no study {config.study!r} in {redact(url)}; `search studies` lists them")
    config = continue_config(dataclasses.replace(config, explicit=frozenset()), config.study, made)
    study = optuna.load_study(study_name=config.study, storage=storage)
    top = leaders(study, candidates)
    if not top:
        raise SearchError(f"study {config.study!r} has no completed trial to confirm yet")
    confirm = confirmation_study(storage, config.study)
    return ConfirmContext(config, url, study, confirm, SearchSpace.from_mapping(made["space"]), top)


def drain_confirmation(config: RunConfig, on_trial=None, on_epoch=None, context: ConfirmContext | None = None) -> int:
    """Run queued retrains until none is left; how many this process ran."""
    ctx = context or open_confirmation(config, DEFAULT_CANDIDATES)
    retrain = Retrain(ctx.space, ctx.config.data, config.device, ctx.config.seed, on_epoch, INTERRUPTS.stop_requested)
    finished: list[FrozenTrial] = []

    def collect(study: optuna.Study, trial: FrozenTrial) -> None:
        finished.append(trial)
        if on_trial is not None:
            on_trial(study, trial)
        INTERRUPTS.check()
        if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            study.stop()  # the queue is empty: asking again would sample a fresh, unwanted trial

    running: dict[str, int | None] = {"trial_id": None}

    def tracked(trial: optuna.Trial) -> float:
        running["trial_id"] = trial_id(trial)
        return retrain(trial)

    with INTERRUPTS.deferred():
        while waiting := len(ctx.confirm.get_trials(deepcopy=False, states=(TrialState.WAITING,))):
            try:
                optimize(ctx.confirm, tracked, waiting, None, collect)
            except Exception as exc:
                if not is_storage_error(exc):
                    raise
                wait_for_storage(ctx.confirm, ctx.url, exc)
                fail_own_trial(ctx.confirm, running["trial_id"], "the storage connection was lost")
            running["trial_id"] = None
    return len(finished)


def run_confirmation(config: RunConfig, spec, on_trial=None, on_epoch=None) -> dict[str, Any]:
    """Confirm the leaders of ``config.study`` round by round (racing between rounds); the stored summary.

    With ``config.jobs > 1`` each round's retrains are shared by that many worker processes.
    Resumable: retrains already finished (by this or an earlier, killed run) are not redone.
    """
    ctx = open_confirmation(config, spec.candidates)
    for resample in range(spec.resamples):
        candidates = results(ctx.confirm, ctx.top)
        replay(candidates, resample)
        if not enqueue_round(ctx.confirm, candidates, ctx.top, resample):
            continue
        if config.jobs > 1:
            share = dataclasses.replace(ctx.config, device=config.device, jobs=1, explicit=frozenset())
            run_processes(config, confirm_worker_main, [(share, index) for index in range(config.jobs)])
        else:
            drain_confirmation(config, on_trial, on_epoch, ctx)
    candidates = results(ctx.confirm, ctx.top)
    replay(candidates, spec.resamples)
    return _store_safely(ctx, spec, candidates, store_summary)


def _store_safely(ctx: ConfirmContext, spec, candidates, store) -> dict[str, Any]:
    while True:
        try:
            return store(ctx.study, spec, candidates)
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            wait_for_storage(ctx.study, ctx.url, exc)


def confirm_worker_main(config: RunConfig, index: int, threads: int, gpu: str | None) -> None:
    """One confirmation worker: it takes queued retrains until none is left."""
    worker_setup(index, threads, gpu)
    from search._progress import ConfirmProgress

    try:
        drain_confirmation(config, on_trial=ConfirmProgress(label=f"w{index}").trial)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except SearchError as exc:
        print(f"search: error: worker {index}: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
