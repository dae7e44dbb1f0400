"""A study opened: loaded, or created with its record, its baseline, a warm start's trials and its budget's queue."""

from __future__ import annotations

import warnings
from typing import Any

import optuna

from objectives import SearchSpace
from search._optuna import study_id
from search.study._config import RunConfig
from search.study._record import (
    BASELINE_ATTR,
    STUDY_ATTR,
    check_compatible,
    wait_for_budget,
    wait_for_record,
)
from search.study._warm import WARM_ATTR


def model_defaults(ref: str) -> dict[str, Any]:
    """The default values a model function gives its own parameters (the MLP's are the seed's)."""
    from objectives.models import MLP, parameters_of, resolve

    return {} if ref == MLP else parameters_of(resolve(ref))[2]


def open_study(storage, config: RunConfig, metadata: dict[str, Any], warm=()) -> tuple[optuna.Study, bool]:
    """Load the study, or create it (then True); of many workers starting at once, exactly one creates it."""
    from objectives import COSTS

    metric = config.metric_spec
    objectives = [metric, *(COSTS[name] for name in config.costs)]  # the metric first, then each cost
    try:
        study = optuna.create_study(
            study_name=config.study, storage=storage, directions=[m.direction for m in objectives]
        )
    except optuna.exceptions.DuplicatedStudyError:  # it exists, or another worker made it a moment ago
        study = optuna.load_study(study_name=config.study, storage=storage)
        wait_for_record(storage, study_id(study))  # a study without one is refused just below
        check_compatible(config.study, study, metadata)
        wait_for_budget(storage, study_id(study), metadata.get("total_trials"))
        return study, False
    # The storage let this process alone create it: only it writes the record and the baseline.
    study.set_user_attr(STUDY_ATTR, metadata)
    space = SearchSpace.from_mapping(metadata["space"], model=config.model, model_keys=None)
    rows = metadata.get("rows", 0) if config.data.dataset == "table" else 0
    baseline = space.baseline(model_defaults(config.model), rows)
    if baseline is not None:  # the first trial: a known-good default the confirmation compares against
        study.enqueue_trial(baseline, user_attrs={BASELINE_ATTR: True})
    first = [] if baseline is None else [baseline]
    for values, source in warm:  # an earlier study's best, after the baseline (within the budget)
        if values not in first and (not config.total_trials or len(first) < config.total_trials):
            study.enqueue_trial(values, user_attrs={WARM_ATTR: source})
            first.append(values)
    # A budget is its trials, queued now with nothing fixed (the sampler chooses each one's parameters when a
    # worker takes it): Optuna hands each queued trial to exactly one worker, so the study ends at exactly N.
    for _ in range((config.total_trials or 0) - len(first)):
        study.enqueue_trial({})
    with warnings.catch_warnings():  # "experimental" since Optuna 3.2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([m.label for m in objectives])  # optuna-dashboard shows this instead of "Objective 0"
    return study, True
