"""How many trials train together (search/study/_fusion.py): the measured size's bounds, and the workers a run starts.

The measurement itself is timing; here it is replaced by a stand-in that answers the largest size it is allowed,
so what is checked is what the policy does with an answer, not how fast this machine is.
"""

from __future__ import annotations

import pytest

from objectives import DataConfig, Objective, SearchSpace
from search.study import _fusion
from search.study._fusion import MOST, Fusion, fusion_for, typical_member, workers_for


@pytest.fixture(scope="module")
def objective():
    space = SearchSpace.from_mapping({"hidden_units": 16, "epochs": 2, "batch_size": 32})
    return Objective(space, DataConfig(dataset="synthetic", limit_train=200), device="cpu")


@pytest.fixture
def measured(monkeypatch):
    """The measurement answers ``answer(most)``: by default the largest size allowed."""
    asked = []

    def install(answer=lambda most: most):
        def best_size(model, config, splits, most, seconds):
            asked.append(most)
            return answer(most)

        monkeypatch.setattr(_fusion, "best_size", best_size)
        monkeypatch.setattr(_fusion, "_MEASURED", {})
        return asked

    return install


def test_a_measured_group_takes_at_most_a_third_of_the_run(objective, measured):
    measured()
    typical = typical_member(objective, {})
    assert fusion_for(None, objective, {}, None, trials=12).size(objective, typical) == 4
    assert fusion_for(None, objective, {}, None, trials=2) is None  # a group of one: one at a time
    assert fusion_for(None, objective, {}, None, trials=None).size(objective, typical) == MOST


def test_the_users_size_stands_and_one_means_one_at_a_time(objective, measured):
    asked = measured()
    assert fusion_for(1, objective, {}, None, trials=30) is None
    fusion = fusion_for(6, objective, {}, None, trials=3)
    assert fusion is not None and fusion.size(objective, typical_member(objective, {})) == 6
    assert asked == []  # nothing measured when the user says


def test_no_gain_measured_means_one_at_a_time_and_no_line(objective, measured):
    measured(lambda most: 1)
    notes = []
    assert fusion_for(None, objective, {}, notes.append, trials=30) is None
    assert notes == []


def test_a_shape_is_measured_once_a_process(objective, measured):
    asked = measured()
    typical = typical_member(objective, {})
    Fusion(None, most=8).size(objective, typical)
    Fusion(None, most=8).size(objective, typical)
    assert asked == [8]


def test_a_size_measured_up_to_more_holds_for_less_that_reaches_it(objective, measured):
    asked = measured(lambda most: min(most, 2))
    typical = typical_member(objective, {})
    assert Fusion(None, most=8).size(objective, typical) == 2
    assert Fusion(None, most=4).size(objective, typical) == 2  # the ladder up to 4 reaches 2: the same answer
    assert Fusion(None, most=1).size(objective, typical) == 1  # 2 is beyond it: measured again
    assert Fusion(None, most=16).size(objective, typical) == 2  # more than any measurement went: again
    assert asked == [8, 1, 16]


def test_a_worker_process_is_handed_its_parents_sizes(objective, measured):
    asked = measured()
    typical = typical_member(objective, {})
    Fusion(None, most=8).size(objective, typical)
    handed = _fusion.measured()
    _fusion._MEASURED.clear()  # as a newly spawned process starts
    _fusion.remember(handed)
    assert Fusion(None, most=4).size(objective, typical) == 4  # re-measured: the parent's 8 is beyond 4
    _fusion._MEASURED.clear()
    _fusion.remember(handed)
    assert Fusion(None, most=8).size(objective, typical) == 8
    assert asked == [8, 4]


@pytest.mark.parametrize(
    ("trials", "fuse", "workers"),
    [
        (8, None, 2),  # measured groups of at most 2 (a third of 8): two groups of 2 for each of 2 workers
        (6, None, 1),  # groups of 2: six trials are one worker's
        (8, 4, 1),  # groups of 4: one worker's two groups
        (100, 4, 2),  # enough for both
        (8, 1, 2),  # one at a time: every worker
        (None, 4, 2),  # a run until its timeout: every worker
    ],
)
def test_a_fused_run_starts_a_worker_for_each_two_groups_of_trials(objective, measured, trials, fuse, workers):
    measured()
    assert workers_for(2, fuse, objective, {}, trials) == workers
