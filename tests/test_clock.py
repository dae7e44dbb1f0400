"""The storage clock: what a worker waited on its storage, counted at the study's storage."""

from __future__ import annotations

import threading
import time

import optuna
import pytest
from conftest import storage_line

from search.storages._clock import StorageTime, attach
from search.study._format import format_storage_time


class Slow(optuna.storages.InMemoryStorage):
    """A storage whose trial reads take a known time."""

    def get_trial(self, trial_id):
        time.sleep(0.05)
        return super().get_trial(trial_id)


@pytest.fixture
def slow():
    """A timed slow storage with a study and a trial, and the clock's reading before the test's calls."""
    storage = Slow()
    clock = attach(storage)
    study_id = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "s")
    trial = storage.create_new_trial(study_id)
    return storage, clock, study_id, trial, clock.time(0.0)


def test_calls_and_their_time_are_counted_and_a_nested_call_is_one(slow):
    storage, clock, study_id, trial, before = slow
    storage.get_trial(trial)
    storage.get_n_trials(study_id)  # BaseStorage's get_n_trials calls get_all_trials: one call waited on
    spent = clock.time(1.0, since=before)
    assert spent.calls == 2
    assert 0.05 <= spent.seconds < 1.0
    assert spent.share == pytest.approx(spent.seconds)


def test_calls_from_another_thread_are_background_not_waiting(slow):
    storage, clock, _, trial, before = slow
    beat = threading.Thread(target=storage.get_trial, args=(trial,))  # as Optuna's heartbeat thread does
    beat.start()
    beat.join()
    spent = clock.time(1.0, since=before)
    assert (spent.calls, spent.seconds, spent.background_calls) == (0, 0.0, 1)


def test_a_storage_is_timed_once():
    storage = optuna.storages.InMemoryStorage()
    assert attach(storage) is attach(storage)
    storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "s")
    assert attach(storage).calls == 1


def test_storage_times_add_up_over_workers():
    total = StorageTime(10, 1.0, 2, 10.0) + StorageTime(30, 3.0, 4, 30.0)
    assert total == StorageTime(40, 4.0, 6, 40.0)
    assert total.share == pytest.approx(0.1)
    assert StorageTime().share == 0.0


def test_the_line_gives_calls_per_trial_and_share():
    line = format_storage_time(StorageTime(calls=250, seconds=2.5, wall_seconds=50.0), trials=10)
    assert line == "  storage:   250 calls (25.0 a trial) waited 2.5s, 5% of the workers' time"


def test_a_run_reports_what_it_waited_on_the_storage(cli, workdir):
    code, out, err = cli(
        "run",
        "--study",
        "clock",
        "--dataset",
        "synthetic",
        "--limit-train",
        "300",
        "--n-trials",
        "3",
        "--max-epochs",
        "2",
    )
    assert code == 0, err
    calls, _ = storage_line(out)
    # Each trial asks, sets its parameters, reports each epoch and is told: several calls a trial.
    assert calls >= 3 * 5
    assert "a trial) waited" in out and "% of the workers' time" in out


def test_threads_that_end_are_not_remembered():
    storage = optuna.storages.InMemoryStorage()
    clock = attach(storage)
    for _ in range(5):  # Optuna starts a heartbeat thread per trial
        t = threading.Thread(target=storage.get_all_studies)
        t.start()
        t.join()
    assert clock.background_calls == 5 and clock._depth == {}


def test_a_run_that_waits_on_sqlite_is_told_what_waits_less():
    import dataclasses

    from search import RunSummary
    from search.study._format import format_summary

    states = {"COMPLETE": 15, "PRUNED": 0, "FAIL": 0}
    summary = RunSummary("s", "sqlite:///studies/studies.db", 9.0, states, states, 1, 0.9, {})

    def said(storage: str, waited: float) -> bool:
        spent = StorageTime(calls=900, seconds=waited, wall_seconds=10.0)
        text = format_summary(dataclasses.replace(summary, storage=storage, storage_time=spent), "search run")
        return "a new study in a journal file waits less: --storage journal:///studies/NAME.log" in text

    assert said("sqlite:///studies/studies.db", 5.0)  # half the workers' time
    assert not said("sqlite:///studies/studies.db", 1.0)  # a tenth: nothing to advise
    assert not said("journal:///studies/s.log", 5.0)  # only SQLite's one writer is the cause named
