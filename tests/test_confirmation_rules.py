"""Confirmation's statistics: the racing rule's false-drop rate, the ranking's consistency, the quoted figure's bias.

The simulations run the real `race`, `ranked` and `estimate` on values drawn with known
true means (no training): each candidate's value on a resample is its true mean, plus
the resample's own difficulty (shared by every candidate on it), plus noise of its own.
"""

from __future__ import annotations

import itertools
import statistics

import numpy as np
import pytest

from search.confirmation._rules import MIN_ROUNDS, Candidate, estimate, race, ranked

KEYS = [f"kfold/5/11/{i}" for i in range(5)]


def candidate(trial, *values, keys=KEYS):
    return Candidate(
        trial, {"lr": trial}, 0.9, dict(zip(keys, values, strict=False))
    )  # fewer values: the first resamples only


def draw(rng, truths, rounds, noise=0.02, shared=0.02):
    keys = [f"k{i}" for i in range(rounds)]
    effect = rng.normal(0, shared, rounds)
    return keys, [
        Candidate(t, {}, 0.8, {k: mu + effect[i] + rng.normal(0, noise) for i, k in enumerate(keys)})
        for t, mu in enumerate(truths)
    ]


def test_no_candidate_is_dropped_on_fewer_than_three_resamples():
    lead, far = candidate(0, 0.95, 0.95), candidate(1, 0.50, 0.50)
    assert race([lead, far], KEYS[:2]) == 2
    assert not far.dropped and MIN_ROUNDS == 3


def test_a_candidate_clearly_behind_on_every_resample_is_dropped():
    lead = candidate(0, 0.86, 0.85, 0.87, 0.86, 0.85)
    behind = candidate(1, 0.80, 0.78, 0.81, 0.79, 0.80)
    close = candidate(2, 0.855, 0.86, 0.86, 0.855, 0.86)
    race([lead, behind, close], KEYS)
    assert behind.dropped and not close.dropped and not lead.dropped
    assert behind.dropped_after in (3, 4, 5)


def test_whole_row_differences_are_not_certainty():
    """One row of 24 behind on three folds has no spread, but is no evidence either (the resolution floor)."""
    row = 1 / 24
    lead, behind = candidate(0, 0.9, 0.9, 0.9), candidate(1, 0.9 - row, 0.9 - row, 0.9 - row)
    race([lead, behind], KEYS[:3], resolution=row)
    assert not behind.dropped
    race([lead, behind], KEYS[:3], resolution=0.0)
    assert behind.dropped  # without the floor, zero spread would read as certainty


def test_lower_is_better_for_a_minimised_metric():
    low_error = candidate(0, 1.0, 1.1, 0.9, 1.0, 1.05)
    high_error = candidate(1, 3.0, 3.2, 2.9, 3.1, 3.0)
    race([low_error, high_error], KEYS, maximize=False)
    assert high_error.dropped and ranked([high_error, low_error], KEYS, maximize=False)[0] is low_error


def test_the_false_drop_rate_of_equal_candidates_at_the_defaults():
    """Six candidates as good as each other, five folds: how often is one of them dropped?"""
    rng = np.random.default_rng(0)
    runs, dropped, any_dropped = 1500, 0, 0
    for _ in range(runs):
        keys, cands = draw(rng, [0.85] * 6, 5)
        race(cands, keys)
        dropped += sum(c.dropped for c in cands)
        any_dropped += any(c.dropped for c in cands)
    per_candidate = dropped / (runs * 6)
    print(
        f"\nfalse drops, 6 equal candidates, 5 folds: {per_candidate:.1%} per candidate, {any_dropped / runs:.1%} of races drop one"
    )
    assert per_candidate <= 0.04 and any_dropped / runs <= 0.10


def test_the_old_rule_would_have_failed_the_false_drop_check():
    """The check above can fail: a rule that drops at two standard errors after two rounds drops far more."""
    rng = np.random.default_rng(0)
    dropped = 0
    for _ in range(500):
        keys, (a, b) = draw(rng, [0.85, 0.85], 2)
        diffs = [a.values[k] - b.values[k] for k in keys]
        dropped += abs(statistics.fmean(diffs)) > 2 * statistics.stdev(diffs) / np.sqrt(2)
    assert dropped / 500 > 0.15


def test_a_better_mean_on_the_same_resamples_is_never_ranked_below_a_worse_one():
    rng = np.random.default_rng(1)
    for _ in range(300):
        keys, cands = draw(rng, rng.uniform(0.8, 0.86, 5), 5, noise=0.02)
        race(cands, keys)
        order = ranked(cands, keys)
        for above, below in itertools.combinations(order, 2):
            shared = keys[: min(above.dropped_after or 5, below.dropped_after or 5)]
            assert above.mean(shared) >= below.mean(shared) - 1e-12, (above, below)


def test_the_quoted_figure_is_not_the_maximum_of_noisy_means():
    """Six equal candidates: the best confirmed mean is biased up; the pick's fresh figure is not."""
    rng = np.random.default_rng(2)
    best_of_means, quoted = [], []
    for _ in range(1000):
        keys, cands = draw(rng, [0.85] * 6, 5, noise=0.02, shared=0.01)
        race(cands, keys)
        pick = ranked(cands, keys)[0]
        best_of_means.append(pick.mean(keys) - 0.85)
        fresh = 0.85 + rng.normal(0, 0.01, 5) + rng.normal(0, 0.02, 5)  # the pick on resamples the choice never saw
        quoted.append(estimate(list(fresh), 0.25)["mean"] - 0.85)
    bias_max, bias_quoted = statistics.fmean(best_of_means), statistics.fmean(quoted)
    print(
        f"\nbias of the best confirmed mean {bias_max * 100:+.2f} points; of the quoted figure {bias_quoted * 100:+.2f}"
    )
    assert bias_max > 0.008 and abs(bias_quoted) < 0.002


def test_the_interval_covers_the_truth_about_as_often_as_it_says():
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(1000):
        values = list(0.85 + rng.normal(0, 0.02, 5))
        figure = estimate(values, 0.25)
        covered += figure["low"] <= 0.85 <= figure["high"]
    assert covered / 1000 >= 0.95


def test_one_fresh_resample_gives_a_mean_and_no_interval():
    assert estimate([0.8], 0.25) == {"mean": 0.8, "low": None, "high": None, "n": 1, "level": 0.95}


@pytest.mark.parametrize("rounds", [3, 5])
def test_the_race_is_the_same_in_every_process(rounds):
    """Verdicts depend on the stored values only: replaying twice (any order of candidates) agrees."""
    rng = np.random.default_rng(4)
    keys, cands = draw(rng, [0.85, 0.80, 0.84, 0.70], rounds)
    race(cands, keys)
    first = {c.trial: c.dropped_after for c in cands}
    shuffled = list(reversed(cands))
    race(shuffled, keys)
    assert {c.trial: c.dropped_after for c in shuffled} == first


def test_the_drop_threshold_is_the_one_sided_t_test_at_the_corrected_level():
    """Three rounds, two candidates: one look, one comparison, so the level is 0.05 / 2 (t > 4.303 at 2 df)."""
    lead = candidate(0, 0.90, 0.90, 0.90, keys=KEYS[:3])
    clear = candidate(1, 0.88, 0.87, 0.875, keys=KEYS[:3])  # lead 0.025, t = 8.66
    race([lead, clear], KEYS[:3])
    assert clear.dropped_after == 3
    unsure = candidate(1, 0.89, 0.87, 0.88, keys=KEYS[:3])  # lead 0.02, t = 3.46
    race([lead, unsure], KEYS[:3])
    assert not unsure.dropped


def test_a_candidates_record_covers_the_rounds_it_ran():
    lead = candidate(0, 0.86, 0.85, 0.87, 0.86, 0.85)
    behind = candidate(1, 0.80, 0.78, 0.81, 0.79, 0.80)
    race([lead, behind], KEYS)
    ran = KEYS[: behind.dropped_after]
    record = behind.ranked(KEYS)
    assert record.n == len(behind.values) == 5 and record.values == behind.values
    assert record.mean == pytest.approx(statistics.fmean([0.80, 0.78, 0.81, 0.79, 0.80]))
    assert record.sd == pytest.approx(statistics.stdev([0.80, 0.78, 0.81, 0.79, 0.80]))
    assert record.dropped and record.dropped_after == len(ran)
    partial = candidate(2, 0.85, 0.84).ranked(KEYS)  # two of five resamples so far
    assert partial.n == 2 and partial.mean == pytest.approx(0.845) and partial.sd is not None


def test_the_quoted_interval_is_nadeau_and_bengios():
    from scipy.stats import t

    values = [0.80, 0.82, 0.84]
    quote = estimate(values, test_to_train=0.25)
    half = t.ppf(0.975, 2) * statistics.stdev(values) * (1 / 3 + 0.25) ** 0.5
    assert quote["mean"] == pytest.approx(0.82) and quote["n"] == 3
    assert quote["low"] == pytest.approx(0.82 - half) and quote["high"] == pytest.approx(0.82 + half)
    assert estimate(values, 0.25, bounds=(0.0, 0.83))["high"] == 0.83  # never past what the metric can be
