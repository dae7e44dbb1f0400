"""Heartbeats that outlive a lost storage, and trials that never beat."""

from __future__ import annotations

import datetime

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

from search import open_storage
from search.storages._heartbeat import HeartbeatJournalStorage, HeartbeatRDBStorage


def _lost(*args, **kwargs):
    raise sqlalchemy.exc.OperationalError("UPDATE trial_heartbeats", {}, Exception("server closed the connection"))


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


def _orphan(study: optuna.Study, minutes_ago: float) -> int:
    """A RUNNING trial that never beat: its worker died between creating it and the first beat."""
    started = datetime.datetime.now() - datetime.timedelta(minutes=minutes_ago)
    trial = optuna.trial.FrozenTrial(
        number=0, state=TrialState.RUNNING, value=None, datetime_start=started, datetime_complete=None,
        params={"x": 0.5}, distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
        user_attrs={}, system_attrs={}, intermediate_values={}, trial_id=0,
    )
    study.add_trial(trial)
    return study.trials[-1]._trial_id


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_trial_that_never_beat_is_failed_and_retried(tmp_path, kind):
    url = f"sqlite:///{tmp_path}/o.db" if kind == "sqlite" else f"journal:///{tmp_path}/o.log"
    storage = open_storage(url, heartbeat=1)
    study = optuna.create_study(storage=storage, study_name="o")
    old = _orphan(study, minutes_ago=5)
    young = _orphan(study, minutes_ago=0)  # inside the grace period: it may still be starting
    stale = storage._get_stale_trial_ids(study._study_id)
    assert old in stale and young not in stale
    optuna.storages.fail_stale_trials(study)
    states = {t._trial_id: t for t in study.get_trials(deepcopy=False)}
    assert states[old].state == TrialState.FAIL and states[young].state == TrialState.RUNNING
    retry = [t for t in study.get_trials(deepcopy=False) if t.system_attrs.get("failed_trial") == states[old].number]
    assert len(retry) == 1 and retry[0].params == {"x": 0.5}
