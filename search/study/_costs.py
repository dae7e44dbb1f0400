"""Multi-objective studies: a trial's metric beside its costs, the Pareto front, and ``--pick``.

A study made with costs (`objectives.COSTS`: ``params``, ``latency``) is an Optuna
multi-objective study: its first objective is the metric, then each cost, minimised. Every
part of the tool that ranks trials ranks them by the metric (`score`), among the trials that
meet the user's constraint (`Constraint`, ``--pick "params<=100000"``), so confirmation
confirms the point the user chose and the quote is that point's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial

from search._errors import SearchError

_CONSTRAINT = re.compile(r"^\s*([A-Za-z_]+)\s*(<=|>=|<|>)\s*([-+0-9.eE_]+)\s*$")


def parse_objective(text: str) -> tuple[str | None, tuple[str, ...]]:
    """``accuracy,params`` (a metric and costs, in any order; the metric may be left out) as (metric, costs)."""
    from objectives import COSTS, METRICS

    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    for part in parts:
        if part not in METRICS and part not in COSTS:
            raise SearchError(
                f"`costs` is {text!r}, but {part!r} is neither a metric ({', '.join(METRICS)}) "
                f"nor a cost ({', '.join(COSTS)})"
            )
    metrics = [p for p in parts if p in METRICS]
    if len(metrics) > 1:
        raise SearchError(f"`costs` is {text!r}, but names {len(metrics)} metrics; a study has one metric")
    return (metrics[0] if metrics else None), tuple(p for p in parts if p in COSTS)


def made_costs(made: dict[str, Any]) -> tuple[str, ...]:
    """The costs a study minimises beside its metric, from its record (none: a single-objective study)."""
    return tuple(made.get("costs") or ())


def show_costs(made: dict[str, Any]) -> str:
    return ",".join(made.get("costs") or []) or "none"


def fixed_size_note(space, costs: tuple[str, ...]) -> str | None:
    """What to tell a user whose study minimises ``params`` in a space that fixes the model's size."""
    from objectives import Fixed

    if "params" not in costs or any(not isinstance(space.get(name), Fixed) for name in space.model_keys):
        return None
    return (
        "the space fixes every model parameter, so every trial has the same parameter count; "
        "give hidden_units or your model's own parameters ranges in a --space file to trade size for the metric"
    )


def score(trial: FrozenTrial) -> float | None:
    """The trial's metric (its first objective); None until it completes."""
    values = trial.values
    return values[0] if values else None


def cost_of(trial: FrozenTrial, name: str) -> float | None:
    """Cost ``name`` of a trial: as measured for a multi-objective study, or its recorded parameter count."""
    measured = trial.user_attrs.get("costs") or {}
    if name in measured:
        return measured[name]
    if name == "params":
        return trial.user_attrs.get("n_params")
    return None


@dataclass(frozen=True)
class Constraint:
    """``name op bound``: which trials may be picked (``params<=100000``, ``latency<5``)."""

    name: str
    op: str
    bound: float

    @classmethod
    def parse(cls, text: str) -> Constraint:
        from objectives import COSTS

        match = _CONSTRAINT.match(text or "")
        if not match:
            raise SearchError(f"`pick` is {text!r}, but must be COST<=N or COST<N (e.g. params<=100000)")
        name, op, bound = match.groups()
        if name not in COSTS:
            raise SearchError(f"`pick` is {text!r}, but {name!r} is no cost; use one of {', '.join(COSTS)}")
        try:
            value = float(bound.replace("_", ""))
        except ValueError:
            raise SearchError(f"`pick` is {text!r}, but {bound!r} is not a number") from None
        if not math.isfinite(value):
            raise SearchError(f"`pick` is {text!r}, but the bound must be a finite number")
        return cls(name, op, value)

    @property
    def text(self) -> str:
        return f"{self.name}{self.op}{self.bound:g}"

    def admits(self, trial: FrozenTrial) -> bool:
        """Whether the trial meets the constraint (a trial without that cost does not)."""
        value = cost_of(trial, self.name)
        if value is None:
            return False
        return {"<=": value <= self.bound, "<": value < self.bound, ">=": value >= self.bound, ">": value > self.bound}[
            self.op
        ]


def constraint_of(text: str | None) -> Constraint | None:
    return Constraint.parse(text) if text else None


def admitted(trials: Iterable[FrozenTrial], pick: str | None) -> list[FrozenTrial]:
    """The trials that ``pick`` (a constraint's text; None: every trial) admits."""
    constraint = constraint_of(pick)
    return [t for t in trials if constraint is None or constraint.admits(t)]


def front_rows(study, metric, costs: tuple[str, ...]) -> list[dict[str, Any]]:
    """The Pareto front (Optuna's `best_trials`) as `search best --json` lists it, best metric first:
    number, the metric and each cost by name, the parameters."""
    rows = [
        {
            "number": t.number,
            "values": dict(zip((metric.name, *costs), t.values, strict=True)),
            "params": dict(t.params),
        }
        for t in study.best_trials
    ]
    sign = -1.0 if metric.maximize else 1.0
    return sorted(rows, key=lambda r: (sign * r["values"][metric.name], r["number"]))
