"""Looking into stored studies: listings, trial tables, the best trial and its warnings."""

from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives import MLP, Choice, Float, Int, SearchSpace, SpaceError
from search._errors import SearchError
from search._optuna import study_id
from search.storages import open_storage, redact, resolve_storage_url
from search.study._format import quoted
from search.study._record import STUDY_ATTR, confirmed, made_metric
from search.study._summary import count_states

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
        if "confirms" in frozen.user_attrs:
            continue  # a study's confirmation retrains: its row shows them in the confirmed column
        trials = opened.get_all_trials(study_id(frozen), deepcopy=False)
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
                "metric": made_metric(frozen.user_attrs.get(STUDY_ATTR) or {}).name,
                "best_value": best,
                "confirmed": _quoted_mean(frozen.user_attrs),
                "yardstick": _yardstick_mean(frozen.user_attrs),
                "dataset": frozen.user_attrs.get(STUDY_ATTR, {}).get("dataset"),
                "created": min(times).isoformat(timespec="seconds") if times else None,
                "updated": max(times).isoformat(timespec="seconds") if times else None,
            }
        )
    return rows


# The table's columns before the sampled parameters; CSV and JSON carry every column.
TABLE_COLUMNS = ("number", "state", "value", "seconds", "epochs_run")
# User attributes too long for a table row (they stay in CSV and JSON).
_WIDE = ("config", "run", "error", "diverged")


def _quoted_mean(user_attrs: dict[str, Any]) -> float | None:
    summary = confirmed(user_attrs)
    return quoted(summary)["mean"] if summary else None


def _yardstick_mean(user_attrs: dict[str, Any]) -> float | None:
    summary = confirmed(user_attrs)
    stick = (summary or {}).get("yardstick") or {}
    return stick.get("mean")


def trial_rows(study: optuna.Study) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Every trial as a flat row with short column names; every column in order; the columns that fit a terminal.

    Every column: each parameter and user attribute (objects kept nested). Those that fit
    a terminal: the fixed ones and the parameters the study samples.
    """
    trials = study.get_trials(deepcopy=False)
    params = sorted({name for t in trials for name in t.params})
    attrs = sorted({name for t in trials for name in t.user_attrs} - set(TABLE_COLUMNS) - set(params))
    rows = []
    for t in trials:
        row: dict[str, Any] = {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "seconds": round(t.duration.total_seconds(), 3) if t.duration else None,
            "epochs_run": t.user_attrs.get("epochs_run"),
        }
        row.update({p: t.params.get(p) for p in params})
        row.update({a: t.user_attrs.get(a) for a in attrs})
        row["datetime_start"] = t.datetime_start.isoformat(timespec="seconds") if t.datetime_start else None
        rows.append(row)
    fits = [*TABLE_COLUMNS, *params]
    return rows, [*fits, *attrs, "datetime_start"], fits


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as a plain text table, one line each, columns aligned; '-' for missing values."""
    cells = [[("-" if row.get(c) is None else str(row[c])) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [all(_is_number(row.get(c)) for row in rows) for c in columns]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(list(columns)), *(line(r) for r in cells)]) + "\n"


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def best_trial(study: optuna.Study) -> FrozenTrial:
    try:
        return study.best_trial
    except ValueError:
        raise SearchError(f"study {study.study_name!r} has no completed trial yet") from None


def stored_space(study: optuna.Study) -> SearchSpace | None:
    """The space the study was made with; None for a study not made by `search run`.

    A record that no longer parses (a space key renamed by a later version, say) is an
    error: silently skipping the checks that use it would hide the problem.
    """
    made = study.user_attrs.get(STUDY_ATTR)
    if not made:
        return None
    try:
        return SearchSpace.from_mapping(made["space"], model=made.get("model") or MLP, model_keys=None)
    except (SpaceError, KeyError, TypeError) as exc:
        raise SearchError(
            f"study {study.study_name!r} has a recorded search space this version cannot read: {exc}"
        ) from exc


def _widen(name: str) -> str:
    """How a user widens parameter ``name``: the flag, or the space file key."""
    if name == "epochs":
        return (
            "widen it with --max-epochs, or epochs: {low: ..., high: ...} in a --space file (`search space` prints one)"
        )
    return f"widen it with {name}: {{low: ..., high: ...}} in a --space file (`search space` prints one)"


def edge_warnings(trial: FrozenTrial, space: SearchSpace | None) -> list[str]:
    """A warning for each best parameter at the end of its range: the range may be too narrow."""
    if space is None:
        return []
    warnings = []
    for name, value in trial.params.items():
        param = space.get(name)
        if isinstance(param, (Float, Int)) and param.high > param.low:
            where = _position(value, param)
            if where is not None:
                warnings.append(
                    f"{name}={_fmt(value)} is at the {where} edge of its range "
                    f"[{_fmt(param.low)}, {_fmt(param.high)}]; {_widen(name)}"
                )
        elif (
            isinstance(param, Choice)
            and len(param.choices) >= 3
            and all(isinstance(c, (int, float)) for c in param.choices)
        ):
            if value in (min(param.choices), max(param.choices)):
                which = "smallest" if value == min(param.choices) else "largest"
                warnings.append(
                    f"{name}={_fmt(value)} is the {which} of its choices {list(param.choices)}; "
                    f"add values beyond it with {name}: {{choices: [...]}} in a --space file (`search space` prints one)"
                )
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
    """The configuration to use: confirmation's pick when the study was confirmed, else the best search value.

    Both figures are given (``search_value``; ``confirmed``: the race's mean, sd and n, and
    ``quote``: the pick's figure on fresh resamples with its interval), and ``picked_by``
    says which one chose.
    """
    summary = confirmed(study.user_attrs)
    best_by_search = best_trial(study)
    metric = made_metric(study.user_attrs.get(STUDY_ATTR) or {}).name
    trial, picked_by, facts = best_by_search, "search value", None
    warnings: list[str] = []
    if summary:
        leader = summary["ranking"][0]
        trial = next(t for t in study.get_trials(deepcopy=False) if t.number == leader["trial"])
        picked_by = "confirmation"
        facts = {k: leader[k] for k in ("mean", "sd", "n")} | {
            "resamples": summary["resamples"],
            "quote": quoted(summary),
            "yardstick": summary.get("yardstick"),
        }
        if (
            best_by_search.number not in {c["trial"] for c in summary["ranking"]}
            and best_by_search.value != trial.value
        ):
            warnings.append(
                f"trial {best_by_search.number} (search value {best_by_search.value:.4g}) finished after the "
                f"confirmation and is not in it; run `search confirm --study {study.study_name}` again"
            )
    return {
        "study": study.study_name,
        "number": trial.number,
        "value": trial.value,
        "search_value": trial.value,
        "metric": metric,
        "confirmed": facts,
        "picked_by": picked_by,
        "params": dict(trial.params),
        "user_attrs": dict(trial.user_attrs),
        "warnings": warnings + edge_warnings(trial, stored_space(study)),
    }
