"""Looking into stored studies: listings, trial tables, the best trial and its warnings."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from search._errors import SearchError
from search._optuna import study_id
from search.storages import open_storage, redact, resolve_storage_url
from search.study._costs import score
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
        complete = [score(t) for t in trials if t.state == TrialState.COMPLETE and t.values]
        times = [d for t in trials for d in (t.datetime_start, t.datetime_complete) if d is not None]
        best = None
        if complete:
            maximize = frozen.directions[0] == optuna.study.StudyDirection.MAXIMIZE
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
    return summary.quote.mean if summary else None


def _yardstick_mean(user_attrs: dict[str, Any]) -> float | None:
    summary = confirmed(user_attrs)
    return summary.yardstick.mean if summary and summary.yardstick else None


def trial_rows(study: optuna.Study) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Every trial as a flat row with short column names; every column in order; the columns that fit a terminal.

    Every column: each parameter and user attribute (objects kept nested). Those that fit
    a terminal: the fixed ones and the parameters the study samples.
    """
    trials = study.get_trials(deepcopy=False)
    params = sorted({name for t in trials for name in t.params})
    # A multi-objective study's costs get a column each (a cost named like a parameter gets a prefix).
    costs = sorted({name for t in trials for name in t.user_attrs.get("costs") or {}})
    cost_columns = {c: c if c not in params and c not in TABLE_COLUMNS else f"cost_{c}" for c in costs}
    taken = {*TABLE_COLUMNS, *params, "costs"}
    attrs = sorted({name for t in trials for name in t.user_attrs} - taken)
    rows = []
    for t in trials:
        row: dict[str, Any] = {
            "number": t.number,
            "state": t.state.name,
            "value": score(t),
            "seconds": round(t.duration.total_seconds(), 3) if t.duration else None,
            "epochs_run": t.user_attrs.get("epochs_run"),
        }
        row.update({cost_columns[c]: (t.user_attrs.get("costs") or {}).get(c) for c in costs})
        row.update({p: t.params.get(p) for p in params})
        row.update({a: t.user_attrs.get(a) for a in attrs})
        row["datetime_start"] = t.datetime_start.isoformat(timespec="seconds") if t.datetime_start else None
        rows.append(row)
    # A trial that went on from a dead one's checkpoint says from which epoch (search/tracking/_checkpoints.py).
    resumed = ["resumed_at_epoch"] if "resumed_at_epoch" in attrs else []
    fits = [*TABLE_COLUMNS, *resumed, *cost_columns.values(), *params]
    return rows, [*fits, *(a for a in attrs if a not in resumed), "datetime_start"], fits


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
