"""Confirmation's rules: per-candidate figures, the racing rule that drops the clearly behind, the ranking.

Racing keeps the cost down: after each round, a candidate clearly behind the leader
(its mean lower by more than two standard errors of the paired difference, or by
`RACE_MARGIN` after a single round) is dropped.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

RACE_MARGIN = 0.015  # after one round: a candidate this far behind the leader is dropped


@dataclass
class Candidate:
    """One confirmed configuration: its search trial and its value on each resample."""

    trial: int
    params: dict[str, Any]
    search_value: float
    values: dict[int, float] = field(default_factory=dict)
    dropped: bool = False

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values.values()) if self.values else None

    @property
    def sd(self) -> float | None:
        return statistics.stdev(self.values.values()) if self.n >= 2 else None

    def to_dict(self) -> dict[str, Any]:
        return {"trial": self.trial, "params": self.params, "search_value": self.search_value, "mean": self.mean,
                "sd": self.sd, "n": self.n, "values": {str(k): v for k, v in sorted(self.values.items())},
                "dropped": self.dropped}


def race(candidates: list[Candidate], done_rounds: int) -> None:
    """Mark the candidates clearly behind the leader after ``done_rounds`` rounds as dropped."""
    alive = [c for c in candidates if not c.dropped and c.n >= done_rounds]
    if done_rounds < 1 or len(alive) < 2:
        return
    rounds = range(done_rounds)
    leader = max(alive, key=lambda c: statistics.fmean(c.values[r] for r in rounds))
    for c in alive:
        if c is leader:
            continue
        diffs = [leader.values[r] - c.values[r] for r in rounds]
        mean = statistics.fmean(diffs)
        if done_rounds == 1:
            c.dropped = mean > RACE_MARGIN
        else:
            c.dropped = mean > max(2 * statistics.stdev(diffs) / math.sqrt(done_rounds), 1e-9)


def replay(candidates: list[Candidate], rounds: int) -> None:
    """Apply the racing rule after each of the first ``rounds`` rounds (the same verdicts every worker reaches)."""
    for done in range(1, rounds + 1):
        race(candidates, done)


def ranked(candidates: list[Candidate], resamples: int) -> list[Candidate]:
    """Best first: those retrained on every resample, by mean; then the ones dropped on the way."""
    for c in candidates:
        c.dropped = c.n < resamples
    return sorted(candidates, key=lambda c: (-c.n, -(c.mean if c.mean is not None else -1.0), c.trial))
