"""Confirmation's orchestration: open the searched study, adopt a plan, run its retrains, store the summary.

Every process that confirms a study, on this machine or another, runs the same loop on
the same plan (`search.confirmation._plan`): read the retrains stored so far, replay the
race, queue what the current round still needs, run what is queued, and wait for what
runs elsewhere (a retrain RUNNING in another process counts as pending: its worker's
heartbeat keeps it alive, and a dead worker's retrain is failed and queued again). The
summary is a function of the plan and the stored values only, so every process stores
the same one. ``--jobs N`` is N such processes on this machine.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from search._errors import NothingToConfirm, SearchError, is_storage_error
from search._optuna import trial_id
from search.confirmation._config import ConfirmConfig
from search.confirmation._context import ConfirmContext, open_confirmation, wait_for_search
from search.confirmation._plan import (
    FOLDS,
    HOLDOUTS,
    KFOLD_BELOW,
    Plan,
    adopt,
    leaders,
    plans,
    resample_keys,
    search_seconds,
    trim_to_budget,
)
from search.confirmation._retrain import PLAN, RESAMPLE, ROLE, SOURCE, Retrain
from search.confirmation._rules import ranked
from search.confirmation._state import LOST, State, candidates, finished, needed, read, summary_of
from search.confirmation._summary import Confirmation, Yardstick
from search.study._config import RunConfig
from search.study._fusion import Fusion
from search.study._reconnect import fail_own_trial, wait_for_storage
from search.study._record import CONFIRM_ATTR
from search.study._run import optimize
from search.study._signals import INTERRUPTS
from search.study._together import drain_together
from search.workers._processes import parent_works, run_processes, worker_process

_POLL_SECONDS = 0.1  # between looks at retrains running elsewhere (a round waits on its last retrain)
MAX_FAILURES = 2  # a retrain that fails this often (an error, not an interruption) stops the confirmation


def propose(ctx: ConfirmContext, spec: ConfirmConfig) -> Plan:
    """The plan this process would make now: the leaders, cut to the search's time unless K was given."""
    chosen, baseline = leaders(ctx.study, spec.candidates, ctx.metric.maximize, spec.pick)
    if not chosen and spec.pick and _any_complete(ctx.study):
        raise NothingToConfirm(
            f"no completed trial meets `pick` {spec.pick}; loosen it (`search best` lists the trials)"
        )
    if not chosen:
        if _any_complete(ctx.study):
            raise NothingToConfirm(
                "every completed trial diverged (its training loss became NaN or infinite); "
                "narrow the lr range of the search space"
            )
        raise NothingToConfirm(f"study {ctx.config.study!r} has no completed trial yet")
    rows = int(ctx.made.get("rows") or 0) or _pool_rows(ctx)
    scheme = "kfold" if rows < KFOLD_BELOW else "holdout"
    rounds = spec.resamples or (FOLDS if scheme == "kfold" else HOLDOUTS)
    trimmed = 0
    if not spec.given:
        chosen, trimmed = trim_to_budget(chosen, baseline, search_seconds(ctx.study), rounds, rounds)
    fraction = ctx.config.data.validation_fraction
    val_share = 1 / FOLDS if scheme == "kfold" else fraction
    seed = ctx.config.seed
    return Plan(
        # A chain of plans per setting; a constraint is part of the setting (its leaders differ).
        spec=(spec.text if spec.given else "auto") + (f" pick {spec.pick}" if spec.pick else ""),
        pick=spec.pick,
        candidates=tuple(t.number for t in chosen),
        race=tuple(resample_keys(seed, scheme, "race", rounds)),
        estimate=tuple(resample_keys(seed, scheme, "estimate", rounds)),
        scheme=scheme,
        resolution=1 / max(1, round(rows * val_share)) if ctx.metric.name in ("accuracy", "balanced_accuracy") else 0.0,
        test_to_train=val_share / (1 - val_share),
        search_best=chosen[0].number,
        baseline=baseline.number if baseline is not None else None,
        trimmed=trimmed,
        maximize=ctx.metric.maximize,
    )


def _any_complete(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _pool_rows(ctx: ConfirmContext) -> int:
    from objectives.data import pool_size

    return pool_size(ctx.config.data)


def work(
    ctx: ConfirmContext, plan: Plan, on_trial=None, on_epoch=None, on_wait: Callable[[int], None] | None = None
) -> None:
    """Run this plan's retrains in this process until the plan needs nothing more."""
    retrain = Retrain(
        ctx.space, ctx.config.data, ctx.config.device, ctx.metric.name, on_epoch, INTERRUPTS.stop_requested
    )
    told = False
    while True:
        state = _read_safely(ctx, plan)
        now, ahead = needed(ctx, plan, state)
        if not now:
            return
        _check_failures(ctx, state, now)
        queue = [n for n in now if n[:2] not in state.in_flight]
        if not queue and not state.waiting:  # all of this round runs elsewhere: start on the next
            queue = [n for n in ahead if n[:2] not in state.in_flight]
        trials = {t.number: t for t in ctx.study.get_trials(deepcopy=False)}
        for source, key, role in queue:
            ctx.confirm.enqueue_trial(
                dict(trials[source].params), user_attrs={SOURCE: source, RESAMPLE: key, ROLE: role, PLAN: plan.id}
            )
        if queue or state.waiting:
            _drain(ctx, retrain, on_trial)
            told = False
            continue
        if on_wait is not None and not told:
            on_wait(state.running)
            told = True
        _wait(ctx)


def _read_safely(ctx: ConfirmContext, plan: Plan) -> State:
    while True:
        try:
            return read(ctx, plan)
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            wait_for_storage(ctx.confirm, ctx.url, exc)


def _check_failures(ctx: ConfirmContext, state: State, now: list[tuple[int, str, str]]) -> None:
    for source, key, _ in now:
        if state.failures[(source, key)] >= MAX_FAILURES:
            raise SearchError(
                f"the retrain of trial {source} on resample {key} failed {state.failures[(source, key)]} times "
                f"({state.errors[(source, key)]}); fix the cause and run search confirm --study "
                f"{ctx.config.study} again (finished retrains are kept)"
            )


def _wait(ctx: ConfirmContext) -> None:
    """Let a round's retrains finish elsewhere; a dead worker's retrain is failed (and queued again) meanwhile."""
    time.sleep(_POLL_SECONDS)
    INTERRUPTS.check()
    if ctx.config.heartbeat:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(ctx.confirm)


def _drain(ctx: ConfirmContext, retrain: Retrain, on_trial) -> None:
    """Run queued retrains until none is waiting: one at a time, or, where they share a resample and a shape and
    fusing pays (`search.study._fusion`), several as one model."""
    running: list[int] = []

    def told(study: optuna.Study, trial: FrozenTrial) -> None:
        if trial_id(trial) in running:
            running.remove(trial_id(trial))
        if on_trial is not None:
            on_trial(study, trial)
        INTERRUPTS.check()

    def collect(study: optuna.Study, trial: FrozenTrial) -> None:
        told(study, trial)
        if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            study.stop()  # the queue is empty: asking again would sample a fresh, unwanted trial

    def tracked(trial: optuna.Trial) -> float:
        running[:] = [trial_id(trial)]
        try:
            return retrain(trial)
        except RuntimeError as exc:  # out of memory, say: on record, and counted against the pair
            trial.set_user_attr("error", (str(exc).strip().splitlines() or [type(exc).__name__])[0][:500])
            raise

    def waiting() -> int:
        return len(ctx.confirm.get_trials(deepcopy=False, states=(TrialState.WAITING,)))

    with INTERRUPTS.deferred():
        if not waiting():
            return
        try:
            if ctx.config.fuse != 1:
                drain_together(ctx.confirm, retrain.begin, Fusion(ctx.config.fuse), waiting, told, running)
            else:
                optimize(ctx.confirm, tracked, waiting(), None, collect)
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            wait_for_storage(ctx.confirm, ctx.url, exc)
            for trial in running or [None]:
                fail_own_trial(ctx.confirm, trial, LOST)


def run_confirmation(
    config: RunConfig,
    spec: ConfirmConfig,
    on_trial=None,
    on_epoch=None,
    on_plan: Callable[[Plan], None] | None = None,
    on_wait: Callable[[int], None] | None = None,
    on_search_wait: Callable[[int, int], None] | None = None,
) -> Confirmation:
    """Confirm the leaders of ``config.study``; the stored summary.

    The leaders are chosen once the searched study has no trial running (``on_search_wait`` hears how
    many run, and how many of those send no heartbeat, each time that changes).

    Resumable (finished retrains are kept; a killed confirmation's plan is taken up again), and
    shared: any number of processes confirming the study at once work on one plan and store
    the same summary. With ``config.jobs > 1`` that many worker processes share the retrains.
    """
    ctx = open_confirmation(config)
    wait_for_search(ctx, on_search_wait)
    plan = adopt(ctx.confirm, propose(ctx, spec), lambda p: finished(ctx, p))
    if on_plan is not None:
        on_plan(plan)
    if config.jobs > 1:
        share = dataclasses.replace(ctx.config, device=config.device, jobs=1, explicit=frozenset(), quiet=config.quiet)
        own = (lambda: work(ctx, plan, on_trial, on_epoch, on_wait)) if parent_works(config) else None
        first = 1 if own is not None else 0
        run_processes(
            config, confirm_worker_main, [(share, plan.id, index) for index in range(first, config.jobs)], own=own
        )
    else:
        work(ctx, plan, on_trial, on_epoch, on_wait)
    state = _read_safely(ctx, plan)
    if needed(ctx, plan, state)[0]:
        raise SearchError(
            f"the confirmation of {config.study!r} stopped before its end; run search confirm --study "
            f"{config.study} again (finished retrains are kept)"
        )
    return _store(ctx, dataclasses.replace(summary_of(ctx, plan, state), yardstick=_yardstick(ctx, plan, state)))


def _yardstick(ctx: ConfirmContext, plan: Plan, state: State) -> Yardstick | None:
    if ctx.config.yardstick == "none" or ctx.config.data.dataset != "table":
        return None
    from search.confirmation._yardstick import yardstick

    pick = ranked(candidates(ctx, plan, state), list(plan.race), plan.maximize)[0].trial
    return yardstick(
        ctx.config.data,
        ctx.metric,
        plan,
        {k: state.values[(pick, k)] for k in plan.estimate if (pick, k) in state.values},
    )


def _store(ctx: ConfirmContext, summary: Confirmation) -> Confirmation:
    """Store the summary on the searched study, unless a newer plan's is there already."""
    while True:
        try:
            stored = ctx.study.user_attrs.get(CONFIRM_ATTR)
            newer = isinstance(stored, dict) and isinstance(stored.get("plan"), int) and stored["plan"] > summary.plan
            if not newer:
                ctx.study.set_user_attr(CONFIRM_ATTR, summary.to_dict())
            return summary
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            wait_for_storage(ctx.study, ctx.url, exc)


def confirm_worker_main(config: RunConfig, plan_id: int, index: int, threads: int, gpu: str | None) -> None:
    """One confirmation worker: it works on the plan until the plan needs nothing more."""
    with worker_process(index, threads, gpu):
        from search.study._progress import ConfirmProgress

        ctx = open_confirmation(config)
        plan = next(p for p in plans(ctx.confirm) if p.id == plan_id)
        on_trial = None if config.quiet else ConfirmProgress(label=f"w{index}", metric=ctx.metric.name).trial
        work(ctx, plan, on_trial=on_trial)
