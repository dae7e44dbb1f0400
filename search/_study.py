"""Study orchestration: validate everything, open the storage, create or continue a study, optimise."""

from __future__ import annotations

import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives import EpochResult, Objective, SearchSpace, Splits

from search._config import RunConfig
from search._errors import SearchError
from search._heartbeat import retry_callback
from search._pruners import make_pruner
from search._samplers import make_sampler
from search._storage import open_storage, redact, resolve_storage_url, scrub, storage_kind

# The study user attribute that records how a study was made; a run that continues the
# study must match it, or its trials would not be comparable.
STUDY_ATTR = "search"
_COMPATIBLE_KEYS = ("dataset", "validation_fraction", "seed", "limit_train", "space")
# How long a worker waits for a storage that went away (a database restart) before giving up.
RECONNECT_SECONDS = 120.0


@dataclass(frozen=True)
class RunSummary:
    """What a run did, and where the study stands after it."""

    study: str
    storage: str  # redacted
    wall_seconds: float
    run_states: dict[str, int]  # this run's finished trials by state
    study_states: dict[str, int]  # the whole study's trials by state
    best_number: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)


def study_metadata(config: RunConfig, space: SearchSpace) -> dict[str, Any]:
    """How a study is made: what must stay the same for its trials to be comparable."""
    return {
        "dataset": config.data.dataset,
        "validation_fraction": config.data.validation_fraction,
        "seed": config.seed,
        "limit_train": config.data.limit_train,
        "space": space.to_dict(),
    }


def load_space(config: RunConfig) -> SearchSpace:
    if config.space is None:
        return SearchSpace.from_mapping({}, max_epochs=config.max_epochs)
    return SearchSpace.from_file(config.space, max_epochs=config.max_epochs)


def prepare(config: RunConfig, on_epoch=None, splits: Splits | None = None) -> tuple[SearchSpace, Objective, str, optuna.Study]:
    """Everything a run needs, checked before the first write, so a refused run changes nothing."""
    space = load_space(config)
    objective = Objective(space, config.data, config.device, config.seed, on_epoch=on_epoch, splits=splits)
    url = resolve_storage_url(config.storage)
    if config.jobs > 1 and storage_kind(url) == "sqlite":
        raise SearchError(
            f"--jobs {config.jobs} needs a storage that several processes can share, and SQLite is not "
            f"one; use --storage journal:///studies/{config.study}.log (this machine) "
            "or postgresql://... / mysql+pymysql://... / redis://... (many machines)"
        )
    storage = open_storage(url, heartbeat=config.heartbeat or None)
    study = _open_study(storage, config, study_metadata(config, space))
    return space, objective, url, study


def run_study(
    config: RunConfig,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    on_epoch: Callable[[optuna.Trial, EpochResult], None] | None = None,
    worker: int = 0,
    splits: Splits | None = None,
) -> RunSummary:
    """Run ``config.n_trials`` more trials of ``config.study`` in this process, creating it if new."""
    space, objective, url, study = prepare(config, on_epoch, splits)

    # Seed by how far the study has come (and by worker): a continued study must not replay
    # the samples its first run drew, yet a fresh study with the same seed is reproducible.
    study.sampler = make_sampler(config.sampler, config.seed + len(study.get_trials(deepcopy=False)) + 7919 * worker)
    study.pruner = make_pruner(config.pruner, space.max_epochs)

    finished: list[FrozenTrial] = []
    running: dict[str, int | None] = {"trial_id": None}

    def collect(study: optuna.Study, trial: FrozenTrial) -> None:
        finished.append(trial)
        running["trial_id"] = None
        if on_trial is not None:
            on_trial(study, trial)

    def tracked(trial: optuna.Trial) -> float:
        running["trial_id"] = trial._trial_id
        try:
            return objective(trial)
        except RuntimeError as exc:  # the trial fails alone; its reason goes on record
            trial.set_user_attr("error", (str(exc).strip().splitlines() or [type(exc).__name__])[0][:500])
            raise

    started = time.perf_counter()
    while True:
        left = None if config.n_trials is None else config.n_trials - len(finished)
        time_left = None if config.timeout is None else config.timeout - (time.perf_counter() - started)
        if left == 0 or (time_left is not None and time_left <= 0):
            break
        try:
            _optimize(study, tracked, left, time_left, collect)
            break
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            _wait_for_storage(study, url, exc)
            _fail_own_trial(study, running["trial_id"], "the storage connection was lost")
            running["trial_id"] = None
    return summarize(study, url, time.perf_counter() - started, finished)


def _optimize(study, objective, n_trials, timeout, callback) -> None:
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


def is_storage_error(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an error it was raised from, means the storage went away.

    The chain matters: when the storage fails while Optuna records a trial, Optuna's own
    clean-up can raise a second error (an UnboundLocalError in Optuna 5) on top of it.
    """
    import sqlalchemy.exc

    kinds: tuple[type[BaseException], ...] = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
    try:
        import redis.exceptions

        kinds += (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
    except ImportError:
        pass
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kinds):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _wait_for_storage(study: optuna.Study, url: str, exc: BaseException) -> None:
    """Wait for the storage to answer again; a `SearchError` if it does not in time."""
    print(f"search: lost the storage {redact(url)} ({scrub(str(exc), url)}); reconnecting...", file=sys.stderr, flush=True)
    deadline = time.monotonic() + RECONNECT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(2.0)
        try:
            study.get_trials(deepcopy=False)
            print("search: the storage is back; the study goes on", file=sys.stderr, flush=True)
            return
        except Exception as again:  # noqa: BLE001 - any failure here means "not yet"
            if not is_storage_error(again):
                raise
    raise SearchError(
        f"the storage {redact(url)} has not answered for {RECONNECT_SECONDS:.0f}s; "
        "the finished trials are stored; continue the study when it is back"
    ) from exc


def _fail_own_trial(study: optuna.Study, trial_id: int | None, reason: str) -> None:
    """Fail the trial this worker was running when the storage went away, and queue it again."""
    if trial_id is None:
        return
    storage = study._storage
    trial = storage.get_trial(trial_id)
    if trial.state != TrialState.RUNNING:
        return  # Optuna managed to record it, or a heartbeat check got there first
    storage.set_trial_user_attr(trial_id, "error", reason)
    try:
        storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return
    retry_callback()(study, storage.get_trial(trial_id))


def _open_study(storage, config: RunConfig, metadata: dict[str, Any]) -> optuna.Study:
    try:
        storage.get_study_id_from_name(config.study)
        exists = True
    except KeyError:
        exists = False
    if exists:
        study = optuna.load_study(study_name=config.study, storage=storage)
        check_compatible(config.study, study, metadata)
        return study
    study = optuna.create_study(
        study_name=config.study, storage=storage, direction="maximize", load_if_exists=True
    )
    if STUDY_ATTR not in study.user_attrs:  # another worker may have made it a moment ago
        study.set_user_attr(STUDY_ATTR, metadata)
    else:
        check_compatible(config.study, study, metadata)
    return study


def check_compatible(name: str, study: optuna.Study, metadata: dict[str, Any]) -> None:
    """Refuse to continue a study made with another data set, split or space."""
    stored = study.user_attrs.get(STUDY_ATTR)
    if stored is None or study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise SearchError(f"study {name!r} was not made by `search run`; choose another --study name")
    for key in _COMPATIBLE_KEYS:
        if stored.get(key) != metadata[key]:
            if key == "space":
                differ = sorted(k for k in metadata["space"] if stored["space"].get(k) != metadata["space"][k])
                what = f"a different search space ({', '.join(differ)} differ)"
            else:
                what = f"{key}={stored.get(key)!r}, but this run asks for {key}={metadata[key]!r}"
            raise SearchError(
                f"study {name!r} was made with {what}; continue it with the same options "
                "or choose another --study name"
            )


def count_states(trials: list[FrozenTrial]) -> dict[str, int]:
    counts = Counter(t.state.name for t in trials)
    return {state.name: counts.get(state.name, 0) for state in TrialState}


def summarize(study: optuna.Study, url: str, wall_seconds: float, finished: list[FrozenTrial]) -> RunSummary:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else None
    return RunSummary(
        study=study.study_name,
        storage=redact(url),
        wall_seconds=wall_seconds,
        run_states=count_states(finished),
        study_states=count_states(trials),
        best_number=best.number if best else None,
        best_value=best.value if best else None,
        best_params=dict(best.params) if best else {},
    )
