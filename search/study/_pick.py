"""The configuration to use: confirmation's pick, or the best search value, with its figures and warnings."""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from objectives import MLP, Choice, Float, Int, SearchSpace, SpaceError
from search._errors import SearchError
from search.confirmation._summary import Quote, Yardstick, known
from search.study._costs import Constraint, admitted, front_rows, made_costs, score
from search.study._format import format_interval, format_value, label
from search.study._record import STUDY_ATTR, confirmed, made_metric

# A best value within this share of its range's end (log-scaled for log ranges) is "at the edge".
EDGE = 0.05


@dataclass(frozen=True)
class Confirmed:
    """What confirmation says of the pick: its race figures (mean, sd over n of the race's resamples) and the quote."""

    mean: float | None
    sd: float | None
    n: int
    resamples: int
    quote: Quote
    yardstick: Yardstick | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **{k: getattr(self, k) for k in ("mean", "sd", "n", "resamples")},
            "quote": self.quote.to_dict(),
            "yardstick": self.yardstick.to_dict() if self.yardstick else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Confirmed:
        d = known(cls, data)
        stick = Yardstick.from_dict(d["yardstick"]) if d.get("yardstick") else None
        return cls(**{**d, "quote": Quote.from_dict(d["quote"]), "yardstick": stick})


@dataclass(frozen=True)
class Pick:
    """The configuration to use: trial ``number`` of ``study``, picked by ``picked_by``.

    ``picked_by`` is "confirmation" when the study was confirmed (``confirmed`` holds the race's
    figures and the quote), else "search value" (optimistic: the best of many noisy figures).
    """

    study: str
    number: int
    search_value: float | None
    metric: str
    picked_by: str
    params: dict[str, Any]
    user_attrs: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    confirmed: Confirmed | None = None
    constraint: str | None = None  # what the pick meets (`--pick`): chosen among those trials only

    @property
    def quote(self) -> Quote | None:
        """The figure to quote (mean, low, high, n), once confirmed."""
        return self.confirmed.quote if self.confirmed else None

    @property
    def yardstick(self) -> Yardstick | None:
        return self.confirmed.yardstick if self.confirmed else None

    def to_dict(self) -> dict[str, Any]:
        """As `search best --json` prints it (``value``: the search value, under Optuna's name for it)."""
        return {
            "study": self.study,
            "number": self.number,
            "value": self.search_value,
            "search_value": self.search_value,
            "metric": self.metric,
            "confirmed": self.confirmed.to_dict() if self.confirmed else None,
            "picked_by": self.picked_by,
            "params": self.params,
            "user_attrs": self.user_attrs,
            "warnings": list(self.warnings),
            "constraint": self.constraint,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pick:
        d = known(cls, data)
        facts = Confirmed.from_dict(d["confirmed"]) if d.get("confirmed") else None
        return cls(**{**d, "warnings": tuple(d.get("warnings") or ()), "confirmed": facts})


def pick_of(study: optuna.Study, pick: str | None = None) -> Pick:
    """The configuration to use: confirmation's pick when the study was confirmed, else the best search value.

    ``pick`` (a constraint, ``params<=100000``): the best among the trials that meet it; a confirmation
    made under another constraint (or none) does not answer it, so the pick is then by search value.
    """
    pick = Constraint.parse(pick).text if pick else None
    summary = confirmed(study.user_attrs)
    if pick is not None and summary is not None and summary.constraint != pick:
        summary = None
    constraint = pick if pick is not None else summary.constraint if summary else None
    best_by_search = best_trial(study, constraint)
    trial, facts, warnings = best_by_search, None, []
    if summary:
        leader = summary.pick
        trial = next(t for t in study.get_trials(deepcopy=False) if t.number == leader.trial)
        facts = Confirmed(leader.mean, leader.sd, leader.n, summary.resamples, summary.quote, summary.yardstick)
        if best_by_search.number not in {c.trial for c in summary.ranking} and score(best_by_search) != score(trial):
            warnings.append(
                f"trial {best_by_search.number} (search value {score(best_by_search):.4g}) finished after the "
                f"confirmation and is not in it; run `search confirm --study {study.study_name}` again"
            )
    return Pick(
        study=study.study_name,
        number=trial.number,
        search_value=score(trial),
        metric=made_metric(study.user_attrs.get(STUDY_ATTR) or {}).name,
        picked_by="confirmation" if facts else "search value",
        params=dict(trial.params),
        user_attrs=dict(trial.user_attrs),
        warnings=tuple(warnings + edge_warnings(trial, stored_space(study))),
        confirmed=facts,
        constraint=constraint,
    )


def front_of(study) -> tuple[list[str], list[dict[str, Any]]] | None:
    """A multi-objective study's objectives (the metric, then each cost) and Pareto front; None for one objective."""
    made = study.user_attrs.get(STUDY_ATTR) or {}
    costs = made_costs(made)
    if not costs or len(study.directions) != 1 + len(costs):
        return None
    metric = made_metric(made)
    return [metric.name, *costs], front_rows(study, metric, costs)


def pick_line(best: Pick) -> str:
    """The first line of `search best`: which trial, picked how, and the figure to quote."""
    metric = best.metric
    under = f" among the trials with {best.constraint}" if best.constraint else ""
    if best.confirmed is not None:
        return (
            f"best trial of {best.study!r}: trial {best.number}, picked by confirmation{under}; quote {label(metric)} "
            f"{format_interval(best.confirmed.quote, metric)} on fresh resamples "
            f"(search value {format_value(best.search_value, metric)})"
        )
    return (
        f"best trial of {best.study!r}: trial {best.number}, picked by its search value{under}: {label(metric)} "
        f"{format_value(best.search_value, metric)} (optimistic: not confirmed; "
        f"`search confirm --study {shlex.quote(best.study)}{_pick_flag(best.constraint)}` does)"
    )


def _pick_flag(constraint: str | None) -> str:
    return f" --pick {shlex.quote(constraint)}" if constraint else ""


def best_trial(study: optuna.Study, pick: str | None = None) -> FrozenTrial:
    """The complete trial with the best metric (of a multi-objective study too), among those ``pick`` admits."""
    from search.study._summary import best_of

    trials = study.get_trials(deepcopy=False)
    best = best_of(admitted(trials, pick), study.directions[0] == optuna.study.StudyDirection.MAXIMIZE)
    if best is None and pick is not None and best_of(trials) is not None:
        raise SearchError(f"no completed trial of study {study.study_name!r} meets `pick` {pick}")
    if best is None:
        raise SearchError(f"study {study.study_name!r} has no completed trial yet")
    return best


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
