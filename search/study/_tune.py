"""One run of a study, the search then the confirmation: what `search run` and `search.tune` both call.

What the run has to tell as it goes (a trial finished, the confirmation's plan, a wait) goes
to a `search.study._progress.Reporter`: the command line's prints live lines, the API's quiet one
hears nothing.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from search._errors import NothingToConfirm
from search.storages import redact
from search.study._config import RunConfig
from search.study._progress import Reporter
from search.study._summary import RunSummary


class ConfirmationInterrupted(KeyboardInterrupt):
    """A Ctrl-C (or SIGTERM) during the confirmation: the search's trials are all stored."""


def search_and_confirm(config: RunConfig, reporter: Reporter) -> RunSummary:
    """Run ``config.n_trials`` more trials of ``config.study`` (with ``config.jobs`` workers), then confirm
    its leaders unless ``config.confirm`` says not; the summary, with the confirmation's in it."""
    from search.study._run import run_study
    from search.workers._workers import run_workers

    started = time.perf_counter()
    config, parent = _mlflow_parent(config, reporter)
    if config.jobs > 1:
        summary = run_workers(config, on_note=reporter.note)
    else:
        summary = run_study(config, on_trial=reporter.trial, on_epoch=reporter.epoch, on_note=reporter.note)
    searched = time.perf_counter() - started
    reporter.searched(summary)
    if config.confirm.enabled and summary.best_number is not None:
        try:
            summary = dataclasses.replace(summary, confirmation=confirm(config, reporter))
        except NothingToConfirm as exc:
            reporter.nothing_to_confirm(str(exc))
        except KeyboardInterrupt as exc:
            raise ConfirmationInterrupted() from exc
    summary = dataclasses.replace(summary, wall_seconds=time.perf_counter() - started, search_seconds=searched)
    if parent is not None:
        _end_mlflow_parent(config, parent, summary, reporter)
    return summary


def _mlflow_parent(config: RunConfig, reporter: Reporter) -> tuple[RunConfig, str | None]:
    """With ``--mlflow``: this run's own MLflow run, made before any worker starts, so that all its trials' runs
    nest under it; None where MLflow is down (one line: the study goes on)."""
    if not config.tracking.mlflow:
        return config, None
    from search.tracking import data_tags
    from search.tracking._mlflow import reason, start_parent

    try:
        parent = start_parent(
            config.tracking.mlflow, config.study, {"search.study": config.study, **data_tags(config.data)}
        )
    except Exception as exc:  # noqa: BLE001 - a tracker never stops a study
        reporter.note(
            f"MLflow at {redact(config.tracking.mlflow)} is unreachable ({reason(exc)}); the study goes on without it"
        )
        # "": the workers know it was down, and say so again only once it came back and went away again
        return dataclasses.replace(config, tracking=dataclasses.replace(config.tracking, mlflow_parent="")), None
    return dataclasses.replace(config, tracking=dataclasses.replace(config.tracking, mlflow_parent=parent)), parent


def _end_mlflow_parent(config: RunConfig, parent: str, summary: RunSummary, reporter: Reporter) -> None:
    """The search's best and the confirmation's pick and figure, on the run's own MLflow run."""
    from search.tracking._mlflow import end_parent, reason

    tags, metrics = {}, {}
    if summary.best_number is not None:
        tags["search.best_trial"] = summary.best_number
        metrics[f"search_best_{config.metric_spec.name}"] = summary.best_value
    confirmation = summary.confirmation
    if confirmation is not None:
        tags["search.pick"] = confirmation.pick.trial
        estimate = confirmation.estimate
        if estimate is not None:
            name = config.metric_spec.name
            sides = {"": estimate.mean, "_low": estimate.low, "_high": estimate.high}
            metrics.update({f"confirmed_{name}{side}": v for side, v in sides.items() if v is not None})
    try:
        end_parent(config.tracking.mlflow, parent, tags, metrics)
    except Exception as exc:  # noqa: BLE001 - a tracker never stops a study
        reporter.note(
            f"MLflow at {redact(config.tracking.mlflow)} is unreachable ({reason(exc)}); the run's figures were not logged"
        )


def confirm(config: RunConfig, reporter: Reporter) -> dict[str, Any]:
    """Confirm the leaders of ``config.study`` (`search confirm`), telling ``reporter`` on the way."""
    from search.confirmation import run_confirmation

    return run_confirmation(
        config,
        config.confirm,
        on_trial=reporter.retrain,
        on_plan=reporter.plan,
        on_wait=reporter.waiting,
        on_search_wait=reporter.search_waiting,
    )
