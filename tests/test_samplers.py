"""The default sampler (search/study/_samplers.py): TPE, past a window of trials shown the best and the latest."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from search.study._samplers import TPE_BEST, WindowedSampler, make_sampler

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # TPE's `group`


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    kind = trial.suggest_categorical("kind", ["a", "b", "c"])
    return (x - 1.0) ** 2 + {"a": 0.0, "b": 0.5, "c": 1.0}[kind]


def _tpe(seed: int) -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)


def _scored(study: optuna.Study, values: list[float], state=TrialState.COMPLETE) -> None:
    for v in values:
        study.add_trial(
            optuna.trial.create_trial(
                state=state,
                value=v if state == TrialState.COMPLETE else None,
                intermediate_values={1: v},
                params={"x": v},
                distributions={"x": optuna.distributions.FloatDistribution(-1e9, 1e9)},
            )
        )


def test_the_default_sampler_is_tpe_behind_the_window():
    sampler = make_sampler("tpe", 0)
    assert isinstance(sampler, WindowedSampler) and isinstance(sampler.inner, optuna.samplers.TPESampler)


def test_within_the_window_it_samples_exactly_as_tpe():
    plain = optuna.create_study(sampler=_tpe(3))
    windowed = optuna.create_study(sampler=WindowedSampler(_tpe(3), window=60))
    plain.optimize(_objective, n_trials=60)
    windowed.optimize(_objective, n_trials=60)
    assert [t.params for t in windowed.trials] == [t.params for t in plain.trials]


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_past_the_window_it_shows_the_best_the_latest_and_every_unscored_trial(direction):
    study = optuna.create_study(direction=direction)
    values = [float((7 * k) % 101) for k in range(300)]
    _scored(study, values[:150])
    _scored(study, [0.0] * 10, state=TrialState.PRUNED)
    _scored(study, values[150:])
    running = study.ask()  # unscored: always shown (the constant liar reads it)
    sampler = WindowedSampler(_tpe(0), window=100, best=TPE_BEST)
    shown = sampler.select(study, study.get_trials(deepcopy=False))
    numbers = {t.number for t in shown}
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    best = sorted(complete, key=lambda t: t.value, reverse=direction == "maximize")[:TPE_BEST]
    assert {t.number for t in best} <= numbers  # TPE's good group is the same as over the whole study
    assert set(range(310 - (100 - TPE_BEST), 310)) <= numbers and running.number in numbers
    assert len([t for t in shown if t.state != TrialState.RUNNING]) <= 100
    assert [t.number for t in shown] == sorted(numbers)  # in number order, as Optuna hands them
    few = WindowedSampler(_tpe(0), window=400)
    assert few.select(study, study.get_trials(deepcopy=False)) == study.get_trials(deepcopy=False)


def test_tpe_reads_only_the_window_and_still_finds_the_minimum():
    read = []
    sampler = WindowedSampler(_tpe(1), window=40, best=10)
    real = sampler.select
    sampler.select = lambda study, trials: (read.append(len(shown := real(study, trials))), shown)[1]
    study = optuna.create_study(sampler=sampler)
    study.optimize(_objective, n_trials=120)
    assert max(read) <= 40 + 1 and len(study.trials) == 120  # at most the window and the trial being sampled
    assert study.best_value < 0.05  # the minimum is 0 at x = 1, kind a


def test_a_multi_objective_study_is_shown_whole():
    sampler = WindowedSampler(_tpe(0), window=5)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1 - t.params["x"]), n_trials=12)
    assert sampler._view(study) is study


def test_the_window_moves_as_trials_are_scored():
    study = optuna.create_study(direction="minimize")
    _scored(study, [float(50 + k % 50) for k in range(120)])
    sampler = WindowedSampler(_tpe(0), window=100, best=TPE_BEST)
    first = {t.number for t in sampler.select(study, study.get_trials(deepcopy=False))}
    assert 0 in first and 119 in first  # 0 is among the best (50.0), 119 the latest
    _scored(study, [0.5])  # a new best, and the latest
    _scored(study, [99.0] * 30)  # then many worse: trial 120 stays by value, 0-ish leave by age
    again = {t.number for t in sampler.select(study, study.get_trials(deepcopy=False))}
    assert 120 in again and 150 in again and again != first


def _window_by_definition(study, trials, window, best):
    """The window as its docstring defines it, over the whole list: what the incremental `select` must equal."""
    import heapq

    scored = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    if len(scored) <= window:
        return trials
    complete = [t for t in scored if t.state == TrialState.COMPLETE and t.value is not None]
    pick = heapq.nsmallest if study.direction == optuna.study.StudyDirection.MINIMIZE else heapq.nlargest
    keep = {t.number for t in pick(best, complete, key=lambda t: t.value)}
    keep.update(t.number for t in scored[-(window - best) :])
    return [t for t in trials if t.state not in (TrialState.COMPLETE, TrialState.PRUNED) or t.number in keep]


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_the_window_read_a_little_at_a_time_is_the_window_of_the_whole_study(direction):
    """Trials finish out of order (a long one runs while later ones end), fail, are pruned; the sampler reads
    the study after each change. Each read equals the window taken over the whole list at once."""
    import random

    rng = random.Random(4)
    study = optuna.create_study(direction=direction)
    sampler = WindowedSampler(_tpe(0), window=30, best=5)
    running = []
    for _ in range(400):
        if running and rng.random() < 0.55:
            trial = running.pop(rng.randrange(len(running)))  # any running trial may end next
            state = rng.choice([TrialState.COMPLETE] * 3 + [TrialState.PRUNED, TrialState.FAIL])
            study.tell(trial, rng.random() if state == TrialState.COMPLETE else None, state=state)
        else:
            running.append(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}))
        trials = study.get_trials(deepcopy=False)
        shown = sampler.select(study, trials)
        assert [t.number for t in shown] == [t.number for t in _window_by_definition(study, trials, 30, 5)]
    assert len(study.trials) > 150  # well past the window
