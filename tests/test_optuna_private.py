"""Every private Optuna name `search/_optuna.py` relies on, checked against the installed Optuna.

An upgrade that moves one fails here, loudly, instead of on a user's cluster.
"""

from __future__ import annotations

import inspect

import optuna

from search import _optuna, open_storage


def test_the_pinned_range_is_the_installed_one():
    import tomllib
    from pathlib import Path

    deps = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [d for d in deps if d.startswith("optuna>")]
    from packaging.specifiers import SpecifierSet

    assert optuna.__version__ in SpecifierSet(pin.removeprefix("optuna")), (pin, optuna.__version__)


def test_study_trial_and_storage_ids(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path}/p.db")
    study = optuna.create_study(storage=storage, study_name="p")
    trial = study.ask()
    # The study's storage (Optuna wraps an RDB storage in a cache) and ours agree on the trial.
    assert _optuna.study_storage(study).get_trial(_optuna.trial_id(trial)).number == trial.number
    assert storage.get_trial(_optuna.trial_id(trial)).number == trial.number
    (frozen,) = storage.get_all_studies()
    assert _optuna.study_id(frozen) == storage.get_study_id_from_name("p") == _optuna.study_id(study)
    assert _optuna.trial_id(study.trials[0]) == _optuna.trial_id(trial)
    assert _optuna.storage_backend(_optuna.study_storage(study)) is storage  # under Optuna's cache, ours
    journal = open_storage(f"journal:///{tmp_path}/p.log")
    assert _optuna.storage_backend(_optuna.study_storage(optuna.create_study(storage=journal))) is journal  # no cache


def test_redis_journal_keys(own_storage):
    url = own_storage("redis")
    storage = open_storage(url)
    optuna.create_study(storage=storage, study_name="r")
    client, prefix = _optuna.redis_journal(storage._backend)
    assert prefix == url.split("prefix=", 1)[1] and int(client.get(f"{prefix}:log_number")) >= 0
    assert client.get(f"{prefix}:log:0") is not None  # the entries Optuna's reader reads


def test_heartbeat_interface(tmp_path):
    abstract = _optuna.BaseHeartbeat.__abstractmethods__
    assert abstract == {
        "record_heartbeat",
        "_get_stale_trial_ids",
        "get_heartbeat_interval",
        "get_heartbeat_stale_trial_callback",
    }
    # Optuna's stale-trial check still calls the private method our storages override.
    assert "_get_stale_trial_ids" in inspect.getsource(optuna.storages.fail_stale_trials)
    storage = open_storage(f"sqlite:///{tmp_path}/h.db", heartbeat=5)
    study = optuna.create_study(storage=storage, study_name="h")
    trial = study.ask()
    storage.record_heartbeat(_optuna.trial_id(trial))
    # The cache in front of an RDB storage still makes trials through the method our storage overrides.
    assert "_create_new_trial" in inspect.getsource(optuna.storages._CachedStorage.create_new_trial)
    now, beats = _optuna.rdb_heartbeats(storage, study._study_id, "search:beats")
    beat, promise = beats[_optuna.trial_id(trial)]
    assert promise == 5 and beat is not None and 0 <= (now - beat).total_seconds() < 60


def test_redis_backend_exposes_its_client():
    from optuna.storages.journal import JournalRedisBackend

    backend = JournalRedisBackend("redis://127.0.0.1:6379/0")
    _optuna.redis_ping(backend)
    assert abs(_optuna.redis_time(backend) - __import__("time").time()) < 60  # the server's clock, in seconds


def test_take_waiting_takes_only_a_queued_trial(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path}/w.db")
    study = optuna.create_study(storage=storage, study_name="w")
    study.enqueue_trial({"x": 1})
    (queued,) = study.get_trials(deepcopy=False)
    assert _optuna.take_waiting(storage, _optuna.trial_id(queued))
    taken = storage.get_trial(_optuna.trial_id(queued))
    assert taken.state == optuna.trial.TrialState.RUNNING and taken.datetime_start is not None
    assert not _optuna.take_waiting(storage, _optuna.trial_id(queued))  # already running: not taken again


def test_journal_lock_is_the_one_optunas_appends_take(tmp_path):
    from optuna.storages.journal import JournalFileBackend

    assert "get_lock_file(self._lock)" in inspect.getsource(JournalFileBackend.append_logs)
    backend = JournalFileBackend(str(tmp_path / "j.log"))
    with _optuna.journal_lock(backend):
        assert (tmp_path / "j.log.lock").is_symlink()  # held: another writer waits
    assert not (tmp_path / "j.log.lock").exists()
