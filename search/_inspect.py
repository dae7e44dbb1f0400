"""Looking into stored studies: listings, trial tables, the best trial and its warnings."""

from __future__ import annotations

import json
import math
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives import Choice, Float, Int, SearchSpace, SpaceError

from search._errors import SearchError
from search._storage import open_storage, redact, resolve_storage_url
from search._study import STUDY_ATTR, count_states

# A best value within this share of its range's end (log-scaled for log ranges) is "at the edge".
EDGE = 0.05


def open_existing(storage: str | None, study_name: str | None = None):
    """The storage at ``storage`` (never created), and the named study in it if one is named."""
    url = resolve_storage_url(storage)
    opened = open_storage(url, create=False)
    if study_name is None:
        return url, opened, None
    try:
        study = optuna.load_study(study_name=study_name, storage=opened)
    except KeyError:
        raise SearchError(f"no study {study_name!r} in {redact(url)}; `search studies` lists them") from None
    return url, opened, study


def list_studies(storage: str | None) -> list[dict[str, Any]]:
    """One row per study: name, trials by state, best value, dataset, created, last updated."""
    url, opened, _ = open_existing(storage)
    rows = []
    for frozen in opened.get_all_studies():
        trials = opened.get_all_trials(frozen._study_id, deepcopy=False)
        complete = [t.value for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
        times = [d for t in trials for d in (t.datetime_start, t.datetime_complete) if d is not None]
        best = None
        if complete:
            maximize = frozen.direction == optuna.study.StudyDirection.MAXIMIZE
            best = max(complete) if maximize else min(complete)
        rows.append(
            {
                "study": frozen.study_name,
                "trials": len(trials),
                **{state.lower(): n for state, n in count_states(trials).items() if state != "WAITING"},
                "best_value": best,
                "dataset": frozen.user_attrs.get(STUDY_ATTR, {}).get("dataset"),
                "created": min(times).isoformat(timespec="seconds") if times else None,
                "updated": max(times).isoformat(timespec="seconds") if times else None,
            }
        )
    return rows


def trials_frame(study: optuna.Study):
    """Every trial as a row (a pandas DataFrame): number, state, value, seconds, epochs run, params, user attributes."""
    import pandas as pd  # here, not at the top: workers never need it

    df = study.trials_dataframe(attrs=("number", "state", "value", "duration", "params", "user_attrs"))
    if df.empty:
        return pd.DataFrame(columns=["number", "state", "value", "seconds", "epochs_run"])
    df["seconds"] = df.pop("duration").dt.total_seconds().round(3)
    df = df.rename(columns={"user_attrs_epochs_run": "epochs_run"})
    for column in df.columns:
        if df[column].map(lambda v: isinstance(v, (dict, list))).any():
            df[column] = df[column].map(lambda v: json.dumps(v) if isinstance(v, (dict, list)) else v)
    first = [c for c in ("number", "state", "value", "seconds", "epochs_run") if c in df.columns]
    params = sorted(c for c in df.columns if c.startswith("params_"))
    rest = [c for c in df.columns if c not in first and c not in params]
    return df[first + params + rest]


def best_trial(study: optuna.Study) -> FrozenTrial:
    try:
        return study.best_trial
    except ValueError:
        raise SearchError(f"study {study.study_name!r} has no completed trial yet") from None


def stored_space(study: optuna.Study) -> SearchSpace | None:
    made = study.user_attrs.get(STUDY_ATTR)
    if not made:
        return None
    try:
        return SearchSpace.from_mapping(made["space"])
    except (SpaceError, KeyError):
        return None


def edge_warnings(trial: FrozenTrial, space: SearchSpace | None) -> list[str]:
    """A warning for each best parameter at the end of its range: the range may be too narrow."""
    if space is None:
        return []
    warnings = []
    for name, value in trial.params.items():
        param = getattr(space, name, None)
        if isinstance(param, (Float, Int)) and param.high > param.low:
            where = _position(value, param)
            if where is not None:
                warnings.append(
                    f"{name}={_fmt(value)} is at the {where} edge of its range "
                    f"[{_fmt(param.low)}, {_fmt(param.high)}]; consider widening the range"
                )
        elif isinstance(param, Choice) and len(param.choices) >= 3 and all(isinstance(c, (int, float)) for c in param.choices):
            if value in (min(param.choices), max(param.choices)):
                which = "smallest" if value == min(param.choices) else "largest"
                warnings.append(f"{name}={_fmt(value)} is the {which} of its choices {list(param.choices)}; consider adding values beyond it")
    return warnings


def _position(value: float, param: Float | Int) -> str | None:
    low, high, v = param.low, param.high, value
    if param.log:
        low, high, v = math.log(low), math.log(high), math.log(value)
    share = (v - low) / (high - low)
    return "lower" if share <= EDGE else "upper" if share >= 1 - EDGE else None


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def best_summary(study: optuna.Study) -> dict[str, Any]:
    trial = best_trial(study)
    return {
        "study": study.study_name,
        "number": trial.number,
        "value": trial.value,
        "params": dict(trial.params),
        "user_attrs": dict(trial.user_attrs),
        "warnings": edge_warnings(trial, stored_space(study)),
    }
