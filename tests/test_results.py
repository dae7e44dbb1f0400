"""The typed results (confirmation/_summary.py, study/_pick.py, study/_summary.py): JSON there and back."""

from __future__ import annotations

import json

import pytest

from search import Confirmation, Confirmed, Lead, Pick, Quote, Ranked, RunSummary, Yardstick
from search.storages._clock import StorageTime
from search.study._record import CONFIRM_ATTR, confirmed


def _json(value):
    return json.loads(json.dumps(value))


def _confirmation(**changes) -> Confirmation:
    quote = Quote(trial=4, mean=0.85, n=3, low=0.83, high=0.87, level=0.95, values={"k/1/0/5": 0.85})
    ranking = (
        Ranked(trial=4, params={"lr": 0.01}, search_value=0.86, n=3, mean=0.84, sd=0.01, values={"k/2/0/5": 0.84}),
        Ranked(
            trial=0,
            params={"lr": 0.1},
            search_value=0.8,
            n=3,
            mean=0.8,
            sd=0.02,
            baseline=True,
            dropped=True,
            dropped_after=3,
        ),
    )
    fields = dict(
        plan=7, spec="5,3", scheme="kfold", metric="accuracy", direction="maximize", leader=4, ranking=ranking,
        resamples=3, estimate_resamples=3, candidates=2, search_best=4, baseline=0, folds=5,
        versus={"baseline": Lead(trial=0, lead=0.04, n=3, low=0.01, high=0.07)}, estimate=quote,
        yardstick=Yardstick("HistGradientBoosting", mean=0.83, n=3, lead=0.02, lead_low=-0.01, lead_high=0.05),
    )  # fmt: skip
    return Confirmation(**{**fields, **changes})


@pytest.mark.parametrize("changes", [{}, {"estimate": None, "yardstick": None, "versus": {}}])
def test_a_confirmation_reads_back_as_it_was_written(changes):
    summary = _confirmation(**changes)
    assert Confirmation.from_dict(_json(summary.to_dict())) == summary
    assert confirmed({CONFIRM_ATTR: _json(summary.to_dict())}) == summary


def test_a_key_a_later_version_adds_is_left_and_an_unreadable_summary_is_none():
    stored = _json(_confirmation().to_dict()) | {"new_key": 1}
    assert Confirmation.from_dict(stored) == _confirmation()
    assert confirmed({CONFIRM_ATTR: {"ranking": [{"trial": 1}]}}) is None  # set by someone else: not ours
    assert confirmed({CONFIRM_ATTR: "text"}) is None and confirmed({}) is None


def test_the_quote_is_the_estimate_else_the_picks_race_mean():
    assert _confirmation().quote.mean == 0.85 and _confirmation().quote.low == 0.83
    fallback = _confirmation(estimate=None).quote
    assert (fallback.trial, fallback.mean, fallback.n, fallback.low) == (4, 0.84, 3, None)


def test_a_pick_prints_as_search_best_json_did_and_reads_back():
    summary = _confirmation()
    facts = Confirmed(0.84, 0.01, 3, 3, summary.quote, summary.yardstick)
    pick = Pick("s", 4, 0.86, "accuracy", "confirmation", {"lr": 0.01}, {"seconds": 1.5}, ("w",), facts)
    printed = _json(pick.to_dict())
    assert (printed["number"], printed["value"], printed["search_value"]) == (4, 0.86, 0.86)
    assert printed["confirmed"]["quote"]["mean"] == 0.85 and printed["warnings"] == ["w"]
    assert Pick.from_dict(printed) == pick and pick.quote == summary.quote and pick.yardstick == summary.yardstick
    plain = Pick("s", 2, 0.8, "accuracy", "search value", {})
    assert Pick.from_dict(_json(plain.to_dict())) == plain and plain.quote is None and plain.yardstick is None


def test_a_run_summary_reads_back_with_its_confirmation_and_storage_time():
    summary = RunSummary(
        "s", "sqlite:///x.db", 3.0, {"COMPLETE": 2}, {"COMPLETE": 2}, 1, 0.9, {"lr": 0.1},
        confirmation=_confirmation(), storage_time=StorageTime(10, 0.5, 2, 3.0),
    )  # fmt: skip
    assert RunSummary.from_dict(_json(summary.to_dict())) == summary
    bare = RunSummary("s", "sqlite:///x.db", 1.0, {}, {})
    assert RunSummary.from_dict(_json(bare.to_dict())) == bare
