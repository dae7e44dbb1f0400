"""A trial's checkpoints in Optuna's artifact store, and the retried trial that goes on from them.

Writing a checkpoint is two steps, so a kill between them loses nothing: the state goes to the store under a
new artifact id, then the trial's ``checkpoint`` attribute names it (the commit), then the previous one is
removed. A torn write is a file nothing names. When a worker dies, its trial is failed and re-queued (the
heartbeat, `search.storages._heartbeat`); the trial that takes the queued parameters finds the dead trial by
Optuna's ``retry_history`` and goes on from the epoch after its last checkpoint, with its seed and its reports.

A trial's checkpoints go when it ends, however it ends: at any moment the store holds one checkpoint per
trial that is running or died and waits for its retry. A completed trial's weights are kept (as an Optuna
artifact, which optuna-dashboard lists) while it is among the ``keep`` best of the study, and the baseline's.
"""

from __future__ import annotations

import bisect
import io
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives import Resume
from search._optuna import artifact_ids, asked_trial, study_id, study_storage, trial_id, trials_of_this_ask
from search.storages._buffer import write_now
from search.tracking._config import CHECKPOINT_SECONDS
from search.tracking._store import read_state

CHECKPOINT_ATTR = "checkpoint"  # {"artifact": id, "epoch": e, "seed": s}: the trial's last checkpoint
WEIGHTS_ATTR = "weights"  # the artifact id of a completed trial's final weights (a state_dict)
WEIGHTS_FILE = "weights.pt"  # the name optuna-dashboard shows


class ArtifactCheckpoints:
    """`objectives.Checkpoints` on an Optuna artifact store: every ``every`` epochs, or, with ``every`` None,
    after the first epoch that ends ``seconds`` after the trial's start or its last checkpoint."""

    def __init__(self, store: Any, every: int | None, keep: int, seconds: float = CHECKPOINT_SECONDS):
        self.store = store
        self.every = every
        self.keep = keep
        self.seconds = seconds
        self._since: dict[int, float] = {}  # trial number -> when its last checkpoint (or its start) was
        self._failing = False  # a write to the store failed (said once a run)

    def resume(self, trial: optuna.Trial) -> Resume | None:
        self._since[trial.number] = time.monotonic()
        attrs = asked_trial(trial).system_attrs
        history = attrs.get("retry_history") or ([attrs["failed_trial"]] if "failed_trial" in attrs else [])
        for number in reversed(history):  # the latest dead run first: it got furthest
            dead = _trial_numbered(trial.study, number)
            mark = dead.user_attrs.get(CHECKPOINT_ATTR) if dead is not None else None
            if mark is None:
                continue
            state = self._read(mark["artifact"], number)
            if state is not None:
                reports = {e: v for e, v in dead.intermediate_values.items() if e <= mark["epoch"]}
                return Resume(int(mark["epoch"]), int(mark["seed"]), state, reports, number)
        return None

    def offer(self, trial: optuna.Trial, epoch: int, seed: int, snapshot: Callable[[], dict[str, Any]]) -> None:
        if not self._due(trial.number, epoch):
            return
        buffer = io.BytesIO()
        import torch

        torch.save(snapshot(), buffer)
        buffer.seek(0)
        artifact = f"checkpoint-{uuid.uuid4().hex}"
        if not self._written(lambda: self.store.write(artifact, buffer), artifact, "a checkpoint"):
            return  # the trial trains on; its last checkpoint (if any) stays the one to resume from
        previous = trial.user_attrs.get(CHECKPOINT_ATTR)  # the trial's own attributes: no read
        trial.set_user_attr(CHECKPOINT_ATTR, {"artifact": artifact, "epoch": epoch, "seed": seed})
        write_now(study_storage(trial.study), trial_id(trial))  # the mark, and the reports up to it, stored
        if previous is not None:
            self._remove(previous["artifact"])
        self._since[trial.number] = time.monotonic()

    def finished(self, trial: optuna.Trial, model: Any, value: float) -> None:
        self._clear(trial)
        if self.keep and self._ranks(trial, value):
            artifact = self._upload_weights(trial, model)
            if artifact is None:
                return
            trial.set_user_attr(WEIGHTS_ATTR, artifact)
            if not _is_baseline(asked_trial(trial)):
                self._drop_weights_past_keep(trial, value)

    def dropped(self, trial: optuna.Trial) -> None:
        self._clear(trial)

    def _due(self, number: int, epoch: int) -> bool:
        if self.every is not None:
            return self.every > 0 and epoch % self.every == 0
        return time.monotonic() - self._since.get(number, time.monotonic()) >= self.seconds

    def _clear(self, trial: optuna.Trial) -> None:
        """The trial's last checkpoint: nothing will resume it now. A retry carries its dead trial's attributes
        (Optuna's retry callback copies them), so until it saves one of its own, its mark is the one it went on
        from, which goes too."""
        self._since.pop(trial.number, None)
        mark = trial.user_attrs.get(CHECKPOINT_ATTR)
        if mark is not None:
            self._remove(mark["artifact"])

    def _read(self, artifact: str, number: int) -> dict[str, Any] | None:
        try:
            return read_state(self.store, artifact)
        except Exception as exc:  # noqa: BLE001 - a checkpoint another machine's folder holds, a torn file
            print(
                f"search: trial {number}'s checkpoint {artifact} could not be read ({type(exc).__name__}: {exc}); "
                "its retry starts from epoch 1",
                file=sys.stderr,
            )
            return None

    def _remove(self, artifact: str) -> None:
        remove_artifacts(self.store, [artifact])

    def _upload_weights(self, trial: optuna.Trial, model: Any) -> str | None:
        """The weights as the trial's Optuna artifact (its id), or None where they could not be written."""
        import torch
        from optuna.artifacts import upload_artifact

        uploaded: list[str] = []
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / WEIGHTS_FILE
            torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)

            def upload() -> None:
                uploaded.append(upload_artifact(artifact_store=self.store, file_path=str(path), study_or_trial=trial))

            return uploaded[0] if self._written(upload, None, "the trial's weights") else None

    def _written(self, write: Callable[[], None], artifact: str | None, what: str) -> bool:
        """``write()`` done; or, where the store failed (a full disk, a bucket out of reach), one line per outage,
        whatever it left behind removed, and False: a study never stops for a checkpoint or a model file. Said once
        a run: a disk that is nearly full fails, then succeeds as old checkpoints go, then fails again."""
        try:
            write()
        except OSError as exc:
            if artifact is not None:
                self._remove(artifact)
            if not self._failing:
                self._failing = True
                reason = exc.strerror or str(exc)
                print(
                    f"search: could not write {what} to the artifact store ({reason}); the study goes on",
                    file=sys.stderr,
                )
            return False
        return True

    def _ranks(self, trial: optuna.Trial, value: float) -> bool:
        """``value`` is among the ``keep`` best of the study's completed trials (as this worker last read them)."""
        if _is_baseline(asked_trial(trial)):
            return True
        better = [t for t in _completed(trial) if not _is_baseline(t) and _better(t.values[0], value, trial.study)]
        return len(better) < self.keep

    def _drop_weights_past_keep(self, trial: optuna.Trial, value: float) -> None:
        """Removes the weights of the trials that now have ``keep`` better than them (this one among them); the
        baseline's stay. Ties keep their place: a trial holds one while fewer than ``keep`` beat it."""
        sign = 1.0 if trial.study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1.0
        others = [t for t in _completed(trial) if not _is_baseline(t)]
        scores = sorted([sign * t.values[0] for t in others] + [sign * value])  # higher is better
        for t in others:
            beaten_by = len(scores) - bisect.bisect_right(scores, sign * t.values[0])
            if beaten_by >= self.keep and t.user_attrs.get(WEIGHTS_ATTR):
                self._remove(t.user_attrs[WEIGHTS_ATTR])


def _completed(trial: optuna.Trial) -> list[FrozenTrial]:
    return [t for t in trials_of_this_ask(trial.study, (TrialState.COMPLETE,)) if t.values]


def _better(a: float, b: float, study: optuna.Study) -> bool:
    maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    return a > b if maximize else a < b


def _is_baseline(trial: FrozenTrial) -> bool:
    from search.study._record import BASELINE_ATTR

    return bool(trial.user_attrs.get(BASELINE_ATTR))


def _trial_numbered(study: optuna.Study, number: int) -> FrozenTrial | None:
    storage = study_storage(study)
    try:
        return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study_id(study), number))
    except KeyError:
        return None


def artifacts_of(trials: list[FrozenTrial]) -> list[str]:
    """Every artifact a study's trials name: their kept weights, checkpoints and Optuna artifacts."""
    ids: set[str] = set()
    for trial in trials:
        ids.update(artifact_ids(trial))
        if trial.user_attrs.get(WEIGHTS_ATTR):
            ids.add(trial.user_attrs[WEIGHTS_ATTR])
        if (trial.user_attrs.get(CHECKPOINT_ATTR) or {}).get("artifact"):
            ids.add(trial.user_attrs[CHECKPOINT_ATTR]["artifact"])
    return sorted(ids)


def remove_artifacts(store, ids: list[str]) -> int:
    """Removes ``ids`` from ``store``; how many were there (the rest went earlier, as trials fell out of the best)."""
    removed = 0
    for artifact in ids:
        try:
            store.remove(artifact)
            removed += 1
        except Exception:  # noqa: BLE001, S110 - gone already (another worker's sweep): the point was that it goes
            pass
    return removed
