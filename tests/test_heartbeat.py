"""Heartbeats: a trial judged by its own worker's promise, ages on the storage's clock, guarded beats, pickling."""

from __future__ import annotations

import pickle
import time

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

from search import open_storage
from search.storages._heartbeat import PROMISE_ATTR, HeartbeatJournalStorage, HeartbeatRDBStorage

KINDS = ["sqlite", "journal", "redis", "postgresql"]


def _lost(*args, **kwargs):
    raise sqlalchemy.exc.OperationalError("UPDATE trial_heartbeats", {}, Exception("server closed the connection"))


@pytest.fixture
def url_of(tmp_path, own_storage):
    def make(kind: str) -> str:
        return f"sqlite:///{tmp_path}/h.db" if kind == "sqlite" else own_storage(kind)

    return make


def test_a_failed_beat_is_one_line_and_the_thread_lives_on(tmp_path, monkeypatch, capsys):
    storage = open_storage(f"sqlite:///{tmp_path}/h.db", heartbeat=1)
    assert isinstance(storage, HeartbeatRDBStorage)
    study = optuna.create_study(storage=storage, study_name="h")
    trial = study.ask()
    monkeypatch.setattr(optuna.storages.RDBStorage, "record_heartbeat", _lost)
    storage.record_heartbeat(trial._trial_id)  # Optuna's thread would die here with a traceback
    storage.record_heartbeat(trial._trial_id)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lost the storage" in err and "Traceback" not in err
    monkeypatch.undo()
    storage.record_heartbeat(trial._trial_id)  # the database is back: it beats again
    assert capsys.readouterr().err == ""


def test_journal_beats_are_guarded_too(tmp_path, monkeypatch, capsys):
    storage = open_storage(f"journal:///{tmp_path}/h.log", heartbeat=1)
    assert isinstance(storage, HeartbeatJournalStorage)
    trial = optuna.create_study(storage=storage, study_name="h").ask()
    monkeypatch.setattr(storage, "set_trial_system_attr", _lost)
    storage.record_heartbeat(trial._trial_id)
    assert "lost the storage" in capsys.readouterr().err


@pytest.mark.parametrize("kind", KINDS)
def test_a_trial_promises_its_worker_s_beat_and_beats_at_once(url_of, kind):
    url = url_of(kind)
    beating = optuna.create_study(storage=open_storage(url, heartbeat=7), study_name="p")
    trial = beating.ask()
    frozen = beating.trials[0]
    assert frozen.system_attrs[PROMISE_ATTR] == 7
    queued = beating.enqueue_trial({}) or beating.ask()  # a queued trial taken to run promises too
    assert beating.trials[queued.number].system_attrs[PROMISE_ATTR] == 7
    silent = optuna.load_study(study_name="p", storage=open_storage(url))  # a worker that never beats
    unpromised = silent.ask()
    assert PROMISE_ATTR not in silent.trials[unpromised.number].system_attrs  # Optuna's own trial, untouched
    assert trial.number == 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_trial_is_stale_only_past_its_own_worker_s_grace(url_of, kind):
    """A worker that beats every 60 s is not judged by one that beats every second; a worker that
    promised nothing is never judged; one that promised and fell silent is."""
    url = url_of(kind)
    slow = optuna.create_study(storage=open_storage(url, heartbeat=60), study_name="g")
    patient = slow.ask()
    silent = optuna.load_study(study_name="g", storage=open_storage(url)).ask()
    checker_storage = open_storage(url, heartbeat=1)
    checker = optuna.load_study(study_name="g", storage=checker_storage)
    dead = checker.ask()  # promised to beat every second, then never beat again
    ids = {t.number: t._trial_id for t in checker.get_trials(deepcopy=False)}
    deadline = time.monotonic() + 30
    while ids[dead.number] not in checker_storage._get_stale_trial_ids(checker._study_id):
        assert time.monotonic() < deadline, "a silent trial that promised 1 s beats was never judged stale"
        time.sleep(0.2)
    stale = checker_storage._get_stale_trial_ids(checker._study_id)
    assert ids[patient.number] not in stale and ids[silent.number] not in stale


@pytest.mark.parametrize("kind", ["sqlite", "journal", "redis"])
def test_a_host_s_clock_that_lags_fails_no_healthy_trial(url_of, kind, monkeypatch):
    """Beats and ages use the storage's clock: a worker 5 s behind and a checker 5 s ahead agree."""
    url = url_of(kind)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 5)  # the lagging worker
    worker_storage = open_storage(url, heartbeat=1)
    study = optuna.create_study(storage=worker_storage, study_name="c")
    trial = study.ask()
    monkeypatch.setattr(time, "time", lambda: real() + 5)  # the checker, on another host
    checker_storage = open_storage(url, heartbeat=1)
    checker = optuna.load_study(study_name="c", storage=checker_storage)
    for _ in range(4):  # the worker keeps beating every half second; the checker looks each time
        worker_storage.record_heartbeat(trial._trial_id)
        assert checker_storage._get_stale_trial_ids(checker._study_id) == []
        time.sleep(0.5)


@pytest.mark.parametrize("kind", ["sqlite", "journal", "postgresql"])
def test_the_storages_pickle(url_of, kind):
    storage = open_storage(url_of(kind), heartbeat=2)
    study = optuna.create_study(storage=storage, study_name="k")
    trial = study.ask()
    copy = pickle.loads(pickle.dumps(storage))
    copy.record_heartbeat(trial._trial_id)
    copy.set_trial_state_values(trial._trial_id, TrialState.COMPLETE, [1.0])
    assert optuna.load_study(study_name="k", storage=storage).trials[0].state == TrialState.COMPLETE


@pytest.mark.parametrize("interval, grace", [(-1, None), (0, None), (1, -1), (1, 0), (1.5, None)])
def test_the_journal_storage_checks_its_arguments_as_optuna_does(tmp_path, interval, grace):
    from optuna.storages.journal import JournalFileBackend

    backend = JournalFileBackend(str(tmp_path / "j.log"))
    with pytest.raises(ValueError, match="should be a positive integer"):
        HeartbeatJournalStorage(backend, interval, grace)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_retried_trial_taken_by_a_worker_that_never_beats_is_never_judged(url_of, kind):
    """The retry copies the dead trial's promise (and, in a journal, its last beat): the worker that takes it
    promises its own, here none, and no beating checker may fail it."""
    url = url_of(kind)
    beating = open_storage(url, heartbeat=1)
    study = optuna.create_study(storage=beating, study_name="r")
    dead = study.ask()
    deadline = time.monotonic() + 30
    while beating._get_stale_trial_ids(study._study_id) != [dead._trial_id]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    optuna.storages.fail_stale_trials(study)  # failed and queued once more, attributes copied
    silent = optuna.load_study(study_name="r", storage=open_storage(url))
    taken = silent.ask()  # the queued copy, taken by a worker with --heartbeat 0
    assert taken.number == 1 and silent.trials[1].system_attrs.get(PROMISE_ATTR, 0) == 0
    time.sleep(2.5)  # past the checker's grace
    assert taken._trial_id not in beating._get_stale_trial_ids(study._study_id)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_running_copy_made_by_a_silent_worker_carries_no_promise(url_of, kind):
    """A RUNNING trial added from a template that promised beats (a copy of another worker's trial) is this
    worker's now: one that never beats clears the promise, so no checker judges it by the old one."""
    from optuna.distributions import FloatDistribution

    url = url_of(kind)
    study = optuna.create_study(storage=open_storage(url), study_name="t")
    template = optuna.trial.create_trial(
        state=TrialState.RUNNING, params={"lr": 0.1}, distributions={"lr": FloatDistribution(1e-3, 1.0)}
    )
    template._system_attrs = {PROMISE_ATTR: 5}
    study.add_trial(template)
    assert not study.trials[0].system_attrs.get(PROMISE_ATTR)
    beating = open_storage(url, heartbeat=2)
    assert beating._grace() == 4  # no grace given: twice the promised interval, as Optuna's default


def test_a_trial_whose_worker_dies_twice_is_not_run_a_third_time(url_of):
    """A killed worker's trial is queued once more; when that run dies too, the trial itself is the likely killer."""
    beating = open_storage(url_of("sqlite"), heartbeat=1)
    study = optuna.create_study(storage=beating, study_name="twice")

    def dies() -> None:  # asks for a trial, never beats again, and is failed as stale
        trial = study.ask()
        deadline = time.monotonic() + 30
        while trial._trial_id not in beating._get_stale_trial_ids(study._study_id):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        optuna.storages.fail_stale_trials(study)

    dies()
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.WAITING]
    dies()  # the queued copy is taken and dies too
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_retried_trial_is_queued_without_its_original_s_beat_token_or_error(url_of, kind):
    """Optuna's retry copies every attribute: the original's last beat made the copy stale in the moment between
    its take and its first beat (another host failed it there, after a 30 s outage), its creation token let the
    original's worker take the copy for its own lost creation, and its error read as this worker's own failure."""
    from search._optuna import trial_id
    from search.storages._heartbeat import ASK_ATTR, BEAT_ATTR, _Promising

    url = url_of(kind)
    beating = open_storage(url, heartbeat=1)
    study = optuna.create_study(storage=beating, study_name="m")
    dead = study.ask()
    dead.set_user_attr("error", "the storage connection was lost")
    deadline = time.monotonic() + 30
    while beating._get_stale_trial_ids(study._study_id) != [dead._trial_id]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert ASK_ATTR in study.trials[0].system_attrs
    optuna.storages.fail_stale_trials(study)
    copy = study.trials[1]
    assert copy.state == TrialState.WAITING and copy.system_attrs["retry_history"] == [0]
    assert not {ASK_ATTR, BEAT_ATTR} & set(copy.system_attrs) and "error" not in copy.user_attrs
    assert copy.params == dead.params and study.trials[0].user_attrs["error"]  # the original keeps its record
    super(_Promising, beating).set_trial_state_values(trial_id(copy), TrialState.RUNNING)  # taken, not yet beaten
    assert beating._get_stale_trial_ids(study._study_id) == []
    assert beating.asked_but_lost(study._study_id) is None
