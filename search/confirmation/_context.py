"""What a confirmation works on (the searched study, its record, the study of its retrains), and
waiting for the search's running trials before the leaders are chosen."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives import Metric, SearchSpace
from search._errors import SearchError, is_storage_error
from search.confirmation._plan import confirmation_study
from search.storages import open_storage, redact, resolve_storage_url, storage_exists
from search.storages._heartbeat import PROMISE_ATTR
from search.study._config import RunConfig
from search.study._continue import continue_config
from search.study._reconnect import wait_for_storage
from search.study._record import load_space, made_metric, recorded
from search.study._signals import INTERRUPTS

_POLL_SECONDS = 0.1  # between looks at the search's running trials


@dataclass(frozen=True)
class ConfirmContext:
    """What a confirmation works on, read from the searched study."""

    config: RunConfig  # the study's own data set, split, seed, model and metric
    url: str
    study: optuna.Study
    confirm: optuna.Study
    space: SearchSpace
    metric: Metric
    made: dict[str, Any]


def open_confirmation(config: RunConfig) -> ConfirmContext:
    """The searched study (it must exist, made by `search run`) and the study of its retrains."""
    url = resolve_storage_url(config.storage)
    if not storage_exists(url):
        raise SearchError(
            f"no study {config.study!r} in {redact(url)}; run it first with: search run --study {config.study}"
        )
    storage = open_storage(url, heartbeat=config.heartbeat or None)
    made = recorded(storage, config.study)
    if made is None:
        raise SearchError(f"no study {config.study!r} in {redact(url)}; `search studies` lists them")
    config = continue_config(dataclasses.replace(config, explicit=frozenset()), config.study, made)
    study = optuna.load_study(study_name=config.study, storage=storage)
    metric = made_metric(made)
    space = load_space(config, made["space"], made.get("rows"))
    return ConfirmContext(
        config, url, study, confirmation_study(storage, config.study, metric.direction), space, metric, made
    )


def wait_for_search(ctx: ConfirmContext, on_search_wait: Callable[[int, int], None] | None = None) -> None:
    """Wait until the searched study has no running trial: the leaders are chosen from every trial.

    Another process (another host, a second `search run`) may still be searching; its running
    trials could be the best. A dead worker's trial is failed by the heartbeat rule meanwhile
    (and queued again, for a later run); a trial whose worker promised no heartbeat can only be
    waited for.
    """
    told = None
    while True:
        running = _running_search_trials(ctx)
        if not running:
            return
        silent = sum(1 for t in running if not t.system_attrs.get(PROMISE_ATTR))
        if on_search_wait is not None and (len(running), silent) != told:
            on_search_wait(len(running), silent)
            told = (len(running), silent)
        time.sleep(_POLL_SECONDS)
        INTERRUPTS.check()
        if ctx.config.heartbeat:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(ctx.study)


def _running_search_trials(ctx: ConfirmContext) -> list[FrozenTrial]:
    while True:
        try:
            return ctx.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            wait_for_storage(ctx.study, ctx.url, exc)
