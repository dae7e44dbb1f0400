"""A worker's trackers and checkpoints, from a run's `TrackingConfig`: what `search.study._run` calls."""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from search.tracking._config import TrackingConfig
from search.tracking._mlflow import say_once

CLOSE_SECONDS = 60.0  # the longest a run's end waits for its trials' runs to be written


class Tracking:
    """Tells each tracker of each epoch and each ended trial; a tracker that fails is one line, never a stop."""

    def __init__(self, trackers: dict[str, Any], checkpoints: Any = None, down: tuple[str, ...] = ()):
        self.trackers = trackers  # what it is called in a message ("MLflow at http://...") -> tracker
        self.checkpoints = checkpoints
        self._down: dict[str, bool] = dict.fromkeys(down, True)  # known to be down, and said already
        self._ended: queue.SimpleQueue = queue.SimpleQueue()  # (study, trial) for the writing thread; None: stop
        self._thread: threading.Thread | None = None

    def around(self, on_epoch: Callable | None) -> Callable | None:
        """``on_epoch`` followed by each tracker's."""
        if not self.trackers:
            return on_epoch

        def both(trial: optuna.Trial, result: Any) -> None:
            if on_epoch is not None:
                on_epoch(trial, result)
            self._each("epoch", trial, result)

        return both

    def attach(self, objective: Any) -> None:
        """Hands the checkpoints to ``objective`` (`objectives.Objective`) and hears its epochs."""
        objective.checkpoints = self.checkpoints
        objective.on_epoch = self.around(objective.on_epoch)

    def trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """The trial's run, written by a thread of its own: the next trial does not wait on a tracker's server."""
        if not self.trackers:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._write, name="search-trackers", daemon=True)
            self._thread.start()
        self._ended.put((study, trial))

    def close(self) -> None:
        """Waits for the ended trials' runs (up to `CLOSE_SECONDS`: a tracker that hangs does not hold the run)."""
        if self._thread is not None:
            self._ended.put(None)
            self._thread.join(CLOSE_SECONDS)
            if self._thread.is_alive():
                left = self._ended.qsize()
                print(
                    f"search: the trackers did not answer within {CLOSE_SECONDS:.0f} s; {left} trials' runs are not written",
                    file=sys.stderr,
                )
            self._thread = None
        self._each("close")

    def _write(self) -> None:
        while (ended := self._ended.get()) is not None:
            self._each("trial", *ended)

    def _each(self, method: str, *args: Any) -> None:
        for name, tracker in self.trackers.items():
            try:
                getattr(tracker, method)(*args)
                if method == "trial":  # a trial's run written: the tracker is back (an epoch is held in memory)
                    self._down[name] = False
            except Exception as exc:  # noqa: BLE001 - a tracker never stops a study
                say_once(self._down, name, exc)


def open_tracking(config: TrackingConfig, storage_url: str, study: str, metric: str, tags: dict[str, str]) -> Tracking:
    """The trackers ``config`` asks for, and the checkpoints (in the artifact store) unless it turns them off."""
    from search.storages import redact

    trackers: dict[str, Any] = {}
    down: tuple[str, ...] = ()
    if config.mlflow:
        from search.tracking._mlflow import MlflowTracker

        name = f"MLflow at {redact(config.mlflow)}"
        trackers[name] = MlflowTracker(config.mlflow, study, config.mlflow_parent or None, metric, tags)
        down = (name,) if config.mlflow_parent == "" else ()  # the run found it down as it started, and said so
    if config.tensorboard:
        from search.tracking._tensorboard import TensorBoardTracker

        trackers[f"TensorBoard in {config.tensorboard}"] = TensorBoardTracker(config.tensorboard, study, metric)
    checkpoints = None
    if config.checkpoints:
        from search.tracking._checkpoints import ArtifactCheckpoints
        from search.tracking._store import artifact_store_for

        _, store = artifact_store_for(config.artifacts, storage_url)
        checkpoints = ArtifactCheckpoints(store, config.checkpoint_every, config.keep)
    return Tracking(trackers, checkpoints, down)


def data_tags(data: Any) -> dict[str, str]:
    """What a study trains on (`objectives.DataConfig`), for a tracker: the data set, a table's sha256 (its
    fingerprint)."""
    tags = {"search.data": data.data_file or data.dataset}
    if data.data_file:
        from objectives.data import file_hash

        tags["search.data_sha256"] = file_hash(data.data_file)
    return tags
