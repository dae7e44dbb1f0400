"""Study orchestration: validate everything, open the storage, create or continue a study, optimise."""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives import EpochResult, Objective, SearchSpace

from search._config import RunConfig
from search._errors import SearchError
from search._pruners import make_pruner
from search._samplers import make_sampler
from search._storage import open_storage, redact, resolve_storage_url

# The study user attribute that records how a study was made; a run that continues the
# study must match it, or its trials would not be comparable.
STUDY_ATTR = "search"
_COMPATIBLE_KEYS = ("dataset", "validation_fraction", "seed", "limit_train", "space")


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


def run_study(
    config: RunConfig,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    on_epoch: Callable[[optuna.Trial, EpochResult], None] | None = None,
) -> RunSummary:
    """Run ``config.n_trials`` more trials of ``config.study``, creating it if new.

    Everything that can be wrong with the input (space, data, storage URL, a study made
    differently) is found before the first write, so a refused run changes nothing.
    """
    space = load_space(config)
    objective = Objective(space, config.data, config.device, config.seed, on_epoch=on_epoch)
    url = resolve_storage_url(config.storage)
    storage = open_storage(url)
    study = _open_study(storage, config, study_metadata(config, space))

    # Seed by how far the study has come: a continued study must not replay the samples
    # its first run drew, yet a fresh study with the same seed is reproducible.
    study.sampler = make_sampler(config.sampler, config.seed + len(study.get_trials(deepcopy=False)))
    study.pruner = make_pruner(config.pruner, space.max_epochs)

    finished: list[FrozenTrial] = []

    def collect(study: optuna.Study, trial: FrozenTrial) -> None:
        finished.append(trial)
        if on_trial is not None:
            on_trial(study, trial)

    started = time.perf_counter()
    with warnings.catch_warnings():
        # Optuna warns per trial for each fixed categorical it cannot model; noise to a user.
        warnings.simplefilter("ignore", UserWarning)
        study.optimize(
            objective,
            n_trials=config.n_trials,
            timeout=config.timeout,
            callbacks=[collect],
            catch=(RuntimeError,),  # a failing trial (out of memory, say) fails alone
            gc_after_trial=False,
        )
    return summarize(study, url, time.perf_counter() - started, finished)


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
    study.set_user_attr(STUDY_ATTR, metadata)
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
