"""Study orchestration: fault windows at the edges of a run."""

from __future__ import annotations

import optuna
import pytest
import sqlalchemy.exc

import search.study._reconnect
import search.study._record
import search.study._summary


def test_an_outage_during_the_summary_waits_and_succeeds(cli, monkeypatch, capsys):
    """The trials are stored; a database that blinks while the summary is read is waited for."""
    real = search.study._summary.summarize
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise sqlalchemy.exc.OperationalError("SELECT trials", {}, Exception("connection refused"))
        return real(*args, **kwargs)

    monkeypatch.setattr(search.study._summary, "summarize", flaky)
    monkeypatch.setattr(search.study._reconnect, "_POLL_SECONDS", 0.01)
    code, out, err = cli(
        "run", "--study", "s", "--dataset", "synthetic", "--n-trials", 1, "--max-epochs", 1, "--limit-train", 200
    )
    assert code == 0 and "Traceback" not in err
    assert "reconnecting" in err and "the storage is back" in err and "this run:  1 trials" in out
    assert len(calls) == 2


def test_a_plot_that_fails_for_another_reason_says_so():
    from search.cli._report import _plot

    def broken(study):
        raise ValueError("boom")

    def too_few(study):
        raise ValueError("Cannot evaluate parameter importances with only a single trial.")

    assert _plot(broken, None) == "This plot could not be drawn: ValueError: boom"
    assert _plot(too_few, None).startswith("Not enough trials for this plot yet")


def _made_by_optuna(url, trials: int):
    import optuna

    from search import open_storage

    study = optuna.create_study(study_name="foreign", storage=open_storage(url), direction="maximize")
    for _ in range(trials):
        study.add_trial(optuna.trial.create_trial(value=0.5, params={}, distributions={}))
    return study


def test_a_study_made_by_plain_optuna_is_refused_at_once(cli, workdir):
    import time

    url = f"sqlite:///{workdir}/s.db"
    _made_by_optuna(url, trials=1)
    started = time.monotonic()
    code, out, err = cli("run", "--study", "foreign", "--storage", url, "--dataset", "synthetic", "--n-trials", 1)
    assert code == 1 and "was not made by `search run`" in err and err.count("\n") == 1
    assert time.monotonic() - started < search.study._record.RECORD_WAIT_SECONDS  # a study with trials is not waited on
    assert len(optuna.load_study(study_name="foreign", storage=url).trials) == 1  # unchanged


def test_an_empty_study_without_a_record_is_refused_after_a_short_wait(cli, workdir, monkeypatch):
    url = f"sqlite:///{workdir}/s.db"
    _made_by_optuna(url, trials=0)
    monkeypatch.setattr(search.study._record, "RECORD_WAIT_SECONDS", 0.3)
    code, out, err = cli("run", "--study", "foreign", "--storage", url, "--dataset", "synthetic", "--n-trials", 1)
    assert code == 1 and "was not made by `search run`" in err


@pytest.mark.parametrize("kind", ["journal", "postgresql"])
def test_of_workers_starting_at_once_exactly_one_makes_the_study(tmp_path, kind):
    """Several workers open a new study at the same moment: one record, one baseline trial."""
    import threading
    import uuid

    import optuna

    from objectives import DataConfig
    from search import open_storage
    from search.study._config import RunConfig
    from search.study._open import open_study as _open_study
    from search.study._record import load_space, study_metadata

    url = f"journal:///{tmp_path}/race.log" if kind == "journal" else "postgresql://root@127.0.0.1:5432/test"
    name = f"race{uuid.uuid4().hex[:8]}"
    config = RunConfig(study=name, data=DataConfig(dataset="synthetic"))
    metadata = study_metadata(config, load_space(config))
    start, opened, errors = threading.Barrier(6), [], []

    def worker():
        storage = open_storage(url)
        start.wait()
        try:
            opened.append(_open_study(storage, config, metadata))
        except Exception as exc:  # noqa: BLE001 - the test reports it below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors and len(opened) == 6
        study = optuna.load_study(study_name=name, storage=open_storage(url))
        assert len(study.trials) == 1 and study.trials[0].user_attrs.get("baseline") is True
        assert study.user_attrs["search"] == metadata
    finally:
        optuna.delete_study(study_name=name, storage=open_storage(url))


def test_a_fresh_study_with_the_same_seed_draws_the_same_points(cli, workdir):
    import optuna

    for name in ("a", "b"):
        code, out, err = cli(
            "run",
            "--study",
            "s",
            "--storage",
            f"sqlite:///{workdir}/{name}.db",
            "--dataset",
            "synthetic",
            "--limit-train",
            200,
            "--n-trials",
            4,
            "--max-epochs",
            1,
            "--seed",
            3,
        )
        assert code == 0, err
    drawn = [
        [t.params for t in optuna.load_study(study_name="s", storage=f"sqlite:///{workdir}/{name}.db").trials]
        for name in ("a", "b")
    ]
    assert drawn[0] == drawn[1] and len({p["lr"] for p in drawn[0]}) == 4


def test_runs_joining_a_study_at_the_same_moment_draw_apart():
    from search.study._samplers import sampler_seed

    assert sampler_seed(0, 1, 0, None) == sampler_seed(0, 1, 0, None)  # the maker: reproducible
    # Two hosts' worker 0, each seeing the same trials: their run ids keep them apart.
    assert sampler_seed(0, 1, 0, "a1b2c3d4e5f6") != sampler_seed(0, 1, 0, "0f9e8d7c6b5a")
    assert sampler_seed(0, 1, 0, "a1b2c3d4e5f6") != sampler_seed(0, 1, 1, "a1b2c3d4e5f6")


def test_failing_its_own_trial_after_another_worker_did_is_not_an_error(tmp_path):
    """The trial looked RUNNING a moment ago; another host's stale-trial check failed it since."""
    import optuna
    from optuna.trial import TrialState

    from search import open_storage
    from search._optuna import study_storage, trial_id
    from search.study._reconnect import fail_own_trial

    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path}/s.db"), direction="maximize")
    trial = study.ask()
    storage = study_storage(study)
    seen_running = storage.get_trial(trial_id(trial))  # what this worker saw
    storage.set_trial_state_values(trial_id(trial), state=TrialState.FAIL)  # the other worker
    storage.get_trial = lambda _id: seen_running
    fail_own_trial(study, trial_id(trial), "the storage connection was lost")
    del storage.get_trial
    assert [t.state for t in study.get_trials(deepcopy=False)] == [TrialState.FAIL]  # no second retry queued


@pytest.mark.parametrize("after_training", [False, True])
def test_a_worker_whose_trial_another_worker_failed_goes_on(cli, workdir, monkeypatch, after_training):
    """Another worker's stale-trial check failed this worker's live trial (a long pause): one line, and on to the next.
    Failed before its training, the trial's next report is refused; after it, Optuna's tell is (its assertion)."""
    from objectives._objective import Objective
    from search._optuna import study_storage, trial_id
    from search.storages._heartbeat import retry_callback

    real = Objective.__call__

    def other_worker_fails(trial) -> None:  # as the other worker does: fail it and queue its parameters again
        storage = study_storage(trial.study)
        storage.set_trial_state_values(trial_id(trial), optuna.trial.TrialState.FAIL)
        retry_callback()(trial.study, storage.get_trial(trial_id(trial)))

    def paused(self, trial):
        if trial.number == 1 and not after_training:
            other_worker_fails(trial)
        value = real(self, trial)
        if trial.number == 1 and after_training:
            other_worker_fails(trial)
        return value

    monkeypatch.setattr(Objective, "__call__", paused)
    url = f"journal:///{workdir}/j.log"
    code, out, err = cli(
        "run",
        "--study",
        "s",
        "--storage",
        url,
        "--dataset",
        "synthetic",
        "--limit-train",
        200,
        "--max-epochs",
        1,
        "--n-trials",
        4,
        "--heartbeat",
        5,
    )
    assert code == 0, err
    assert err.count("was failed by another worker") == 1 and "Traceback" not in err
    from search import open_storage

    trials = optuna.load_study(study_name="s", storage=open_storage(url)).trials
    states = [t.state.name for t in trials]
    assert (
        states.count("FAIL") == 1 and states.count("COMPLETE") + states.count("PRUNED") == 4
    )  # four trials all the same
    assert trials[1].state.name == "FAIL" and any(t.system_attrs.get("failed_trial") == 1 for t in trials)


def test_a_retried_trial_another_worker_fails_is_taken_over_though_its_original_failed_with_an_error(
    cli, workdir, monkeypatch
):
    """The copy of a trial whose worker lost the storage (its error on record) is failed by another host's stale
    check while this worker runs it: one line and on, as for any trial, not a traceback (seen in CI: the copy
    had inherited its original's error, which read as this worker's own failure)."""
    from objectives._objective import Objective
    from search import open_storage
    from search._optuna import study_storage, trial_id
    from search.storages._heartbeat import retry_callback

    url = f"journal:///{workdir}/j.log"
    base = [
        "run",
        "--study",
        "s",
        "--storage",
        url,
        "--dataset",
        "synthetic",
        "--limit-train",
        200,
        "--max-epochs",
        1,
        "--heartbeat",
        5,
    ]
    assert cli(*base, "--n-trials", 1)[0] == 0
    study = optuna.load_study(study_name="s", storage=open_storage(url))
    done = study.trials[0]
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.FAIL,
            params=done.params,
            distributions=done.distributions,
            user_attrs={**done.user_attrs, "error": "the storage connection was lost"},
        )
    )
    retry_callback()(study, study.trials[1])  # what that worker's fail_own_trial did: its copy is queued
    real = Objective.__call__

    def stale(self, trial):
        storage = study_storage(trial.study)
        if "retry_history" in storage.get_trial(trial_id(trial)).system_attrs:  # another host fails the copy mid-run
            storage.set_trial_state_values(trial_id(trial), optuna.trial.TrialState.FAIL)
            retry_callback()(trial.study, storage.get_trial(trial_id(trial)))
        return real(self, trial)

    monkeypatch.setattr(Objective, "__call__", stale)
    code, out, err = cli(*base, "--n-trials", 1)
    assert code == 0 and "Traceback" not in err, err
    assert err.count("was failed by another worker") == 1


def test_an_objective_s_own_error_on_a_trial_is_never_taken_for_another_worker_s_take_over(workdir, monkeypatch):
    """An error that is not Optuna refusing a tell (here a bug in the objective) ends the run, as it always did;
    taken for a take-over it had the worker fail trial after trial for ever."""
    from objectives import DataConfig
    from objectives._objective import Objective
    from search.study._config import RunConfig
    from search.study._run import run_study

    calls = []

    def buggy(self, trial):
        if calls:
            pytest.fail("the worker ran another trial after the objective's own error")
        calls.append(trial.number)
        raise AttributeError("'Trial' object has no attribute 'system_attrs'")

    monkeypatch.setattr(Objective, "__call__", buggy)
    config = RunConfig(
        study="s",
        storage=f"journal:///{workdir}/j.log",
        max_epochs=1,
        n_trials=3,
        heartbeat=5,
        data=DataConfig(dataset="synthetic", limit_train=200),
    )
    with pytest.raises(AttributeError):
        run_study(config)
    assert calls == [0]


@pytest.mark.parametrize(
    "first, second, refused", [(1, 0, "--heartbeat 0 here would make"), (0, 1, "give --heartbeat 0 here too")]
)
def test_a_study_s_workers_all_beat_or_none_does(cli, workdir, first, second, refused):
    url = f"journal:///{workdir}/j.log"
    base = [
        "run",
        "--study",
        "s",
        "--storage",
        url,
        "--dataset",
        "synthetic",
        "--limit-train",
        200,
        "--max-epochs",
        1,
        "--n-trials",
        1,
    ]
    assert cli(*base, "--heartbeat", first)[0] == 0
    code, _, err = cli(*base, "--heartbeat", second)
    assert code == 1 and refused in err and len(err.strip().splitlines()) == 1
    assert cli(*base)[0] == 0  # left out, it follows the study


def test_the_live_line_tells_the_time_left_for_the_search_and_the_confirmation():
    import datetime
    import io

    from search.study._progress import Progress

    now = [0.0]
    progress = Progress(20, stream=io.StringIO(), clock=lambda: now[0])
    trial = optuna.trial.create_trial(value=0.5, params={}, distributions={})
    trial.datetime_start, trial.datetime_complete = (
        datetime.datetime(2026, 1, 1),
        datetime.datetime(2026, 1, 1, 0, 0, 2),
    )
    for _ in range(5):
        now[0] += 2.0
        progress.trial(None, trial)
    # 5 trials in 10 s, 15 to go: 30 s more; confirmation takes at most the search's own 40 s.
    assert progress.time_left() == "search ~30.0s left, then confirmation ~40.0s"
    timed = Progress(None, stream=io.StringIO(), timeout=12.0, clock=lambda: now[0])
    now[0] += 2.0
    timed.trial(None, trial)
    assert timed.time_left().startswith("search ~10.0s left")
    given = Progress(20, stream=io.StringIO(), confirm=(3, 5), clock=lambda: now[0])
    now[0] += 2.0
    given.trial(None, trial)
    assert given.time_left().endswith("then confirmation ~50.0s")  # (3 leaders + baseline + the pick) x 5 x 2 s


def test_ctrl_c_while_the_data_loads_says_no_trial_was_running(cli, monkeypatch):
    import search.study._run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(search.study._run, "load_splits", interrupted)
    code, out, err = cli("run", "--study", "s", "--dataset", "synthetic", "--n-trials", 5)
    assert code == 130 and "Traceback" not in err
    assert "no trial was running" in err and "marked failed" not in err
    assert err.strip().endswith("Continue with: search run --study s --dataset synthetic --confirm 0 --n-trials 5")


def test_a_storage_fault_says_what_is_still_owed(cli, monkeypatch):
    """A run stopped by a full disk after two trials: its one line asks for the three still owed."""
    import errno

    import search.study._run

    real = search.study._run.optimize

    def fills_up(study, objective, n_trials, timeout, callback):
        calls = []

        def third_fails(trial):
            calls.append(1)
            if len(calls) == 3:
                raise OSError(errno.ENOSPC, "No space left on device")
            return objective(trial)

        return real(study, third_fails, n_trials, timeout, callback)

    monkeypatch.setattr(search.study._run, "optimize", fills_up)
    code, out, err = cli(
        "run", "--study", "s", "--dataset", "synthetic", "--n-trials", 5, "--max-epochs", 1, "--limit-train", 200
    )
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "no space left on device" in err and "the 2 trial(s) this run finished are stored" in err
    assert err.strip().endswith(
        "continue with: search run --study s --dataset synthetic --max-epochs 1 "
        "--limit-train 200 --confirm 0 --n-trials 3"
    )


def test_the_advice_after_a_run_quotes_the_study_name(cli):
    import shlex

    name = "x y;touch p"
    code, out, err = cli(
        "run", "--study", name, "--dataset", "synthetic", "--n-trials", 1, "--max-epochs", 1, "--limit-train", 200
    )
    assert code == 0, err
    assert f"search confirm --study {shlex.quote(name)}" in out and f"--study {name}" not in out


def test_a_trial_stored_before_its_answer_was_lost_counts_once(cli, monkeypatch):
    """The tell reaches the database and the answer is lost (a read timeout on a loaded server): no trial more."""
    from optuna.trial import TrialState

    real, lost = optuna.storages.RDBStorage.set_trial_state_values, []

    def answer_lost(self, trial_id, state, values=None):
        done = real(self, trial_id, state, values)
        if state == TrialState.COMPLETE and not lost:
            lost.append(trial_id)
            raise sqlalchemy.exc.OperationalError(
                "UPDATE trials", {}, Exception("Lost connection to server during query")
            )
        return done

    monkeypatch.setattr(optuna.storages.RDBStorage, "set_trial_state_values", answer_lost)
    monkeypatch.setattr(search.study._reconnect, "_POLL_SECONDS", 0.01)
    code, out, err = cli(
        "run",
        "--study",
        "s",
        "--dataset",
        "synthetic",
        "--n-trials",
        3,
        "--max-epochs",
        1,
        "--limit-train",
        200,
        "--pruner",
        "none",
    )
    assert code == 0 and lost and "reconnecting" in err, err
    trials = optuna.load_study(study_name="s", storage="sqlite:///studies/studies.db").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert "this run:  3 trials" in out


def test_a_lost_storage_is_named_by_its_own_error_not_optuna_s_clean_up(capsys, tmp_path, monkeypatch):
    """Redis gone mid-trial: Optuna's tell fails, then its clean-up raises UnboundLocalError on top."""
    import redis.exceptions

    monkeypatch.setattr(search.study._reconnect, "_POLL_SECONDS", 0.01)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db")
    try:
        try:
            raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        except redis.exceptions.ConnectionError:
            raise UnboundLocalError(  # noqa: B904 - the chain is the case: Optuna's own error inside a lost Redis
                "cannot access local variable 'updated_state' where it is not associated with a value"
            )
    except UnboundLocalError as exc:
        search.study._reconnect.wait_for_storage(study, "redis://127.0.0.1:6379/0", exc)
    err = capsys.readouterr().err
    assert "Error 111 connecting" in err and "updated_state" not in err
