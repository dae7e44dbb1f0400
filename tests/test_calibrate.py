"""How many trials train as one model (objectives/_calibrate.py): the decision from the measured rates."""

from __future__ import annotations

import pytest

from objectives import _calibrate
from objectives._calibrate import GAIN, best_size


def scripted(monkeypatch, rates: dict[int, list[float]]) -> list[int]:
    """``samples_per_second`` answering each K's rates in turn; the Ks measured, in order."""
    asked: list[int] = []

    def measured(model, config, splits, k, seconds):
        asked.append(k)
        return rates[k].pop(0)

    monkeypatch.setattr(_calibrate, "samples_per_second", measured)
    return asked


def test_a_group_that_pays_twice_is_chosen(monkeypatch):
    asked = scripted(monkeypatch, {1: [100, 100, 100], 2: [150], 4: [250, 240], 8: [200]})
    assert best_size(None, None, None, most=32) == 4
    assert asked == [1, 2, 4, 8, 1, 4, 1]  # the ladder stops at 8 (behind 4), then both once more


def test_a_group_that_paid_once_by_luck_is_not(monkeypatch):
    rates = {1: [100, 100, 100], 2: [300, GAIN * 100 - 1]}  # the second measurement falls short of the gain
    scripted(monkeypatch, {**rates, 4: [100]})
    assert best_size(None, None, None, most=32) == 1


@pytest.mark.parametrize("group", [GAIN * 100 - 1, 90])
def test_a_group_short_of_the_gain_trains_alone(monkeypatch, group):
    asked = scripted(monkeypatch, {1: [100, 100], 2: [group], 4: [group * 0.9]})
    assert best_size(None, None, None, most=32) == 1
    assert asked[-1] == 1 and asked.count(2) == 1  # not measured again


def test_the_second_measurement_alone_counts_if_faster(monkeypatch):
    # Alone ran cold the first time: warm, it is as fast as the group, which then does not pay.
    scripted(monkeypatch, {1: [50, 100], 2: [110], 4: [100]})
    assert best_size(None, None, None, most=32) == 1


def test_at_most_most(monkeypatch):
    asked = scripted(monkeypatch, {1: [100, 100, 100], 2: [200, 200], 4: [400]})
    assert best_size(None, None, None, most=2) == 2
    assert 4 not in asked


def test_a_gain_of_exactly_the_threshold_counts_both_times(monkeypatch):
    scripted(monkeypatch, {1: [100, 100, 100], 2: [GAIN * 100, GAIN * 100], 4: [100]})
    assert best_size(None, None, None, most=32) == 2


def test_the_ladder_climbs_past_a_rung_at_exactly_95_percent_of_the_best(monkeypatch):
    scripted(monkeypatch, {1: [100, 100, 100], 2: [200], 4: [0.95 * 200], 8: [400, 400], 16: [300]})
    assert best_size(None, None, None, most=32) == 8


def test_a_tie_keeps_the_smaller_group(monkeypatch):
    scripted(monkeypatch, {1: [100, 100, 100], 2: [200, 200], 4: [200], 8: [100]})
    assert best_size(None, None, None, most=32) == 2
