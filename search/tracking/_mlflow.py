"""``--mlflow URI``: the study as an MLflow experiment, each trial a run nested under the `search run`'s own.

    experiment STUDY
      run "search run 3f2a..."          tags: study, storage kind, data fingerprint; confirmation's figures and
                                        the pick, once confirmed
        run "trial 12"                  params; each epoch's val_<metric>, train_loss, val_loss as histories;
                                        tags: state (complete, pruned, failed), the reason, duration, fingerprint

Written with MLflow's own client. A trial's run is written in one batch when the trial ends (an HTTP call
per epoch would cost a short trial more than its training); so a trial that is cut short leaves no run, and
its retry writes its own. A tracker that is down never stops the study: one line per outage on stderr, the
runs of that window are lost, and the next trial after it comes back is logged again.
"""

from __future__ import annotations

import os
import re
import sys
import time
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

# MLflow's client retries a refused call for minutes by default; a study must not wait on its tracker.
CLIENT_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "search.trial"
_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAIL: "FAILED"}


def client(uri: str) -> Any:
    for key, value in CLIENT_ENV.items():
        os.environ.setdefault(key, value)  # the user's own settings win
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def experiment_id(mlflow: Any, study: str) -> str:
    """The study's experiment, made if new (two workers that make it at once: one makes it, both use it)."""
    found = mlflow.get_experiment_by_name(study)
    if found is not None:
        return found.experiment_id
    try:
        return mlflow.create_experiment(study)
    except Exception:  # noqa: BLE001 - RESOURCE_ALREADY_EXISTS from a worker that was a moment faster
        found = mlflow.get_experiment_by_name(study)
        if found is None:
            raise
        return found.experiment_id


def start_parent(uri: str, study: str, tags: dict[str, str]) -> str:
    """The `search run`'s own MLflow run, which its trials' runs nest under; its id."""
    mlflow = client(uri)
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    run = mlflow.create_run(experiment_id(mlflow, study), run_name=f"search run {when}", tags=tags)
    return run.info.run_id


def end_parent(uri: str, parent: str, tags: dict[str, str], metrics: dict[str, float]) -> None:
    """The run's end: the confirmation's figures and the pick on the parent run."""
    from mlflow.entities import Metric, RunTag

    mlflow = client(uri)
    now = int(time.time() * 1000)
    mlflow.log_batch(
        parent,
        metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
        tags=[RunTag(k, str(v)) for k, v in tags.items()],
    )
    mlflow.set_terminated(parent, "FINISHED")


class MlflowTracker:
    """Each trial's epochs, held in memory, and its run written in one batch as the trial ends."""

    def __init__(self, uri: str, study: str, parent: str | None, metric: str, tags: dict[str, str]):
        self.uri, self.study, self.parent, self.metric, self.tags = uri, study, parent, metric, tags
        self._mlflow: Any = None
        self._experiment: str | None = None
        self._epochs: dict[int, list[tuple[int, Any]]] = {}  # trial number -> (time ms, EpochResult)

    def epoch(self, trial: optuna.Trial, result: Any) -> None:
        self._epochs.setdefault(trial.number, []).append((int(time.time() * 1000), result))

    def trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        epochs = self._epochs.pop(trial.number, [])
        if self._mlflow is None:
            mlflow = client(self.uri)
            self._experiment = experiment_id(mlflow, self.study)
            self._mlflow = mlflow  # only once it answered: a tracker down at the start is asked again next trial
        run = self._mlflow.create_run(
            self._experiment,
            start_time=_ms(trial.datetime_start),
            run_name=f"trial {trial.number}",
            tags=self._trial_tags(trial),
        )
        self._log(run.info.run_id, trial, epochs)
        self._mlflow.set_terminated(run.info.run_id, _STATUS.get(trial.state, "FAILED"), _ms(trial.datetime_complete))

    def close(self) -> None:
        self._epochs.clear()

    def _trial_tags(self, trial: FrozenTrial) -> dict[str, str]:
        tags = {**self.tags, TRIAL_TAG: str(trial.number), "search.state": trial.state.name.lower()}
        if self.parent:
            tags[PARENT_TAG] = self.parent
        reason = trial.user_attrs.get("error") or trial.user_attrs.get("diverged")
        if reason:
            tags["search.reason"] = str(reason)[:500]
        if trial.datetime_start and trial.datetime_complete:
            tags["search.seconds"] = f"{(trial.datetime_complete - trial.datetime_start).total_seconds():.3f}"
        for key in ("resumed_at_epoch", "seed", "device"):
            if key in trial.user_attrs:
                tags[f"search.{key}"] = str(trial.user_attrs[key])
        return tags

    def _log(self, run: str, trial: FrozenTrial, epochs: list[tuple[int, Any]]) -> None:
        from mlflow.entities import Metric, Param

        metrics = []
        for stamp, result in epochs:
            if result.value is not None:
                metrics.append(Metric(f"val_{self.metric}", float(result.value), stamp, result.epoch))
                metrics.append(Metric("val_loss", float(result.val_loss), stamp, result.epoch))
            metrics.append(Metric("train_loss", float(result.train_loss), stamp, result.epoch))
        if trial.values:
            metrics.append(Metric(self.metric, float(trial.values[0]), _ms(trial.datetime_complete), 0))
        params = [Param(k, str(v)) for k, v in trial.params.items()]
        for start in range(0, max(len(metrics), 1), 1000):  # MLflow takes at most 1,000 metrics a batch
            self._mlflow.log_batch(run, metrics=metrics[start : start + 1000], params=params if start == 0 else [])


def _ms(when: Any) -> int:
    return int((when.timestamp() if when is not None else time.time()) * 1000)


def say_once(state: dict[str, bool], what: str, exc: BaseException) -> None:
    """One line on stderr per outage of a tracker (the first failure after a success)."""
    if not state.get(what):
        state[what] = True
        print(f"search: {what} is unreachable ({reason(exc)}); the study goes on without it", file=sys.stderr)


def reason(exc: BaseException) -> str:
    """The short of a tracker's failure: the OS's words where a connection failed, else the innermost error
    urllib3 names (a server that closed the connection, too many error answers), else the error's first line."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    if found:
        return found.group(0)
    named = re.findall(r"(\w+)\('([^']*)'\)", text)
    if named:
        return f"{named[-1][0]}: {named[-1][1]}"
    return f"{type(exc).__name__}: {(text.strip().splitlines() or [''])[0][:120]}"
