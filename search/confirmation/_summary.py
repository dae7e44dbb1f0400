"""What a confirmation found, as typed frozen objects; stored on the searched study as their ``to_dict``.

The stored JSON's keys are the fields' names, so a study written by one version reads in
the next: ``from_dict`` takes the keys it knows and leaves the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


def known(cls: type[T], data: Mapping[str, Any]) -> dict[str, Any]:
    """The items of ``data`` that ``cls`` has a field for."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


class _Flat:
    """A result with no nested results: its dict is its fields."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        return cls(**known(cls, data))


@dataclass(frozen=True)
class Quote(_Flat):
    """The figure to quote: the pick's mean on resamples the choice never saw, and its interval (``level``)."""

    trial: int
    mean: float
    n: int
    low: float | None = None  # None: one resample, no interval
    high: float | None = None
    level: float | None = None
    values: dict[str, float] = field(default_factory=dict)  # by resample key


@dataclass(frozen=True)
class Lead(_Flat):
    """The pick's paired lead over another candidate on the race's resamples both ran (positive: the pick is better)."""

    trial: int
    lead: float
    n: int
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Ranked(_Flat):
    """One raced candidate: its figures over the race's resamples it ran."""

    trial: int
    params: dict[str, Any]
    search_value: float | None
    n: int
    mean: float | None = None
    sd: float | None = None  # None below two resamples
    values: dict[str, float] = field(default_factory=dict)
    baseline: bool = False
    dropped: bool = False
    dropped_after: int | None = None  # the round after which racing dropped it


@dataclass(frozen=True)
class Yardstick(_Flat):
    """Gradient-boosted trees (scikit-learn's defaults) on the pick's fresh resamples, and the pick's lead over them."""

    name: str
    error: str | None = None  # why it was skipped; the figures are then None
    mean: float | None = None
    n: int = 0
    lead: float | None = None
    lead_low: float | None = None
    lead_high: float | None = None
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Confirmation:
    """A confirmation's result: the race's ranking (the pick first), the figure to quote, the yardstick."""

    plan: int | None
    spec: str  # the --confirm setting it answers
    scheme: str  # "kfold" or "holdout"
    metric: str
    direction: str
    leader: int
    ranking: tuple[Ranked, ...]
    resamples: int  # the race's
    estimate_resamples: int
    candidates: int
    search_best: int | None = None
    baseline: int | None = None
    folds: int | None = None
    trimmed: int = 0  # leaders left out to stay within the search's time
    versus: dict[str, Lead] = field(default_factory=dict)  # "search_best", "baseline": the pick's lead over them
    estimate: Quote | None = None
    yardstick: Yardstick | None = None
    constraint: str | None = None  # what every candidate met (`--pick`); None: none asked

    @property
    def pick(self) -> Ranked:
        return self.ranking[0]

    @property
    def quote(self) -> Quote:
        """The figure to quote; where no fresh resample could be scored, the pick's race mean (no interval)."""
        if self.estimate is not None:
            return self.estimate
        return Quote(trial=self.pick.trial, mean=self.pick.mean, n=self.pick.n)

    def to_dict(self) -> dict[str, Any]:
        return {
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
            "ranking": [c.to_dict() for c in self.ranking],
            "versus": {k: v.to_dict() for k, v in self.versus.items()},
            "estimate": self.estimate.to_dict() if self.estimate else None,
            "yardstick": self.yardstick.to_dict() if self.yardstick else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Confirmation:
        d = known(cls, data)
        return cls(
            **{
                **d,
                "ranking": tuple(Ranked.from_dict(c) for c in d["ranking"]),
                "versus": {k: Lead.from_dict(v) for k, v in (d.get("versus") or {}).items()},
                "estimate": Quote.from_dict(d["estimate"]) if d.get("estimate") else None,
                "yardstick": Yardstick.from_dict(d["yardstick"]) if d.get("yardstick") else None,
            }
        )
