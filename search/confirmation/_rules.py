"""Confirmation's statistics: the racing rule, the ranking, and the interval of the figure to quote.

Every decision compares candidates on the *same* resamples (paired): the resample's own
difficulty cancels out, so only each configuration's own quality remains.

The racing rule. After each round n >= `MIN_ROUNDS`, the leader is the candidate with the
best mean so far; another candidate is dropped when a one-sided paired t-test of the
leader's lead (n - 1 degrees of freedom) rejects at level `ALPHA` / (2 L (m - 1)): the
leader is the best of m (so its lead is judged as a two-sided test would), the test is
repeated at L rounds, and there are m - 1 comparisons (Bonferroni). The spread of the differences is never taken below the
metric's resolution (one validation row, for accuracy): differences of whole rows
repeated on three folds are not certainty. Then every candidate whose mean is no better
than a dropped one's is dropped too, so the ranking is consistent: a candidate with the
better mean on the same resamples is never ranked below one with a worse mean.
`bench/overtuning.py --simulate` and `tests/test_confirmation_rules.py` measure the rate
at which a candidate as good as the leader is dropped at the defaults.

The figure to quote comes from resamples the choice never saw (`estimate`): the pick's
mean over them, with a t interval whose variance is corrected for the overlap of the
resamples' training rows (Nadeau and Bengio, 2003).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from search.confirmation._summary import Ranked

MIN_ROUNDS = 3  # no candidate is dropped on fewer paired resamples (one or two are too few to trust)
ALPHA = 0.05  # the racing test's level, shared by the m - 1 comparisons of a round
LEVEL = 0.95  # the quoted interval's coverage


@dataclass
class Candidate:
    """One confirmed configuration: its search trial, and its value on each resample (by resample key)."""

    trial: int
    params: dict[str, Any]
    search_value: float
    values: dict[str, float] = field(default_factory=dict)
    baseline: bool = False
    dropped_after: int | None = None  # the round after which racing dropped it

    @property
    def dropped(self) -> bool:
        return self.dropped_after is not None

    def mean(self, keys: list[str]) -> float | None:
        known = [self.values[k] for k in keys if k in self.values]
        return statistics.fmean(known) if known else None

    def ranked(self, keys: list[str]) -> Ranked:
        """What the stored summary says of it: its figures over the race's resamples it ran."""
        ran = [k for k in keys if k in self.values]
        values = [self.values[k] for k in ran]
        return Ranked(
            trial=self.trial,
            params=self.params,
            search_value=self.search_value,
            baseline=self.baseline,
            values={k: self.values[k] for k in ran},
            mean=statistics.fmean(values) if values else None,
            sd=statistics.stdev(values) if len(values) >= 2 else None,
            n=len(values),
            dropped=self.dropped,
            dropped_after=self.dropped_after,
        )


def race(
    candidates: list[Candidate], keys: list[str], maximize: bool = True, resolution: float = 0.0, alpha: float = ALPHA
) -> int:
    """Replay the racing rule over ``keys`` (the race's resamples, in order); how many rounds are complete.

    Deterministic in the stored values: every process that reads them reaches the same verdicts.
    """
    for c in candidates:
        c.dropped_after = None
    alive = list(candidates)
    done = 0
    looks = max(1, len(keys) - MIN_ROUNDS + 1)
    for n in range(1, len(keys) + 1):
        if any(k not in c.values for c in alive for k in keys[:n]):
            break
        done = n
        if n >= MIN_ROUNDS and len(alive) >= 2:
            for c in _verdicts(alive, keys[:n], maximize, resolution, alpha / (2 * looks)):
                c.dropped_after = n
            alive = [c for c in alive if not c.dropped]
    return done


def _verdicts(
    alive: list[Candidate], keys: list[str], maximize: bool, resolution: float, alpha: float
) -> list[Candidate]:
    from scipy.stats import t

    sign = 1.0 if maximize else -1.0
    means = {c.trial: sign * c.mean(keys) for c in alive}
    leader = max(alive, key=lambda c: (means[c.trial], -c.trial))
    n = len(keys)
    critical = float(t.ppf(1.0 - alpha / (len(alive) - 1), n - 1))
    dropped = []
    for c in alive:
        if c is leader:
            continue
        diffs = [sign * (leader.values[k] - c.values[k]) for k in keys]
        lead = statistics.fmean(diffs)
        spread = max(statistics.stdev(diffs), resolution)
        if lead > 0 and (spread == 0 or lead / (spread / math.sqrt(n)) > critical):
            dropped.append(c)
    if not dropped:
        return []
    bar = max(means[c.trial] for c in dropped)  # no better than a dropped one: dropped too
    return [c for c in alive if c is not leader and means[c.trial] <= bar]


def ranked(candidates: list[Candidate], keys: list[str], maximize: bool = True) -> list[Candidate]:
    """Best first: the survivors by their mean over every race resample; then the dropped, the later
    dropped first, each by its mean over the rounds it ran (the resamples it shares with those above)."""
    sign = 1.0 if maximize else -1.0

    def order(c: Candidate):
        rounds = c.dropped_after if c.dropped else len(keys)
        mean = c.mean(keys[:rounds])
        return (0 if not c.dropped else 1, -rounds, -(sign * mean) if mean is not None else math.inf, c.trial)

    return sorted(candidates, key=order)


def estimate(
    values: list[float], test_to_train: float, level: float = LEVEL, bounds: tuple[float, float] = (-math.inf, math.inf)
) -> dict[str, Any]:
    """The mean of ``values`` (one per fresh resample) and its interval.

    ``bounds``: the values the metric can take (accuracy: 0 to 1), which the interval never passes.
    ``test_to_train``: validation rows over training rows of a resample; resamples share
    training rows, so their values are correlated, and the plain standard error would be
    too small (Nadeau and Bengio's correction: 1/J + n_val/n_train).
    """
    from scipy.stats import t

    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return {"mean": mean, "low": None, "high": None, "n": n, "level": level}
    half = float(t.ppf((1 + level) / 2, n - 1)) * statistics.stdev(values) * math.sqrt(1 / n + test_to_train)
    low, high = max(mean - half, bounds[0]), min(mean + half, bounds[1])  # never past what the metric can be
    return {"mean": mean, "low": low, "high": high, "n": n, "level": level}
