"""Optuna's gRPC storage proxy (search/storages/_grpc.py, `search storage-proxy`) on this machine; the faults across
a network (a cut link, a restarted proxy, a killed worker) are in tests/test_cluster.py."""

from __future__ import annotations

import socket
import threading
import time

import optuna
import pytest
from optuna.trial import TrialState

pytest.importorskip("grpc", reason="gRPC is not installed (the `grpc` extra)")

from search._errors import SearchError, is_storage_error  # noqa: E402
from search.storages import open_storage  # noqa: E402
from search.storages._grpc import HeartbeatGrpcStorage, StorageProxy, grpc_address  # noqa: E402


@pytest.fixture
def served(tmp_path):
    """A proxy on a SQLite file of the test's own, on a free port: (its URL, the file's URL)."""
    database = f"sqlite:///{tmp_path}/p.db"
    proxy = StorageProxy(open_storage(database, heartbeat=1), "127.0.0.1", 0).start()
    try:
        yield f"grpc://127.0.0.1:{proxy.port}", database
    finally:
        proxy.stop()


def _wait_for(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def test_a_run_through_the_proxy_stores_its_trials_in_the_database(cli, served):
    url, database = served
    code, out, err = cli(
        "run", "--study", "p", "--storage", url, "--dataset", "synthetic", "--limit-train", 64,
        "--max-epochs", 2, "--n-trials", 4, "--jobs", 2, "--confirm", 0,
    )  # fmt: skip
    assert code == 0, err
    trials = optuna.load_study(study_name="p", storage=database).trials
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    code, out, _ = cli("studies", "--storage", url)
    assert code == 0 and out.splitlines()[1].split()[:2] == ["p", "4"]


def test_a_worker_s_beats_reach_the_database_and_a_silent_trial_is_failed_by_the_proxy(served):
    url, database = served
    study = optuna.create_study(study_name="h", storage=open_storage(url, heartbeat=1))
    alive = study.ask()  # beats once as it is made, then never (no worker runs it)
    stored = optuna.load_study(study_name="h", storage=database)
    # The proxy fails it two beats' time after its last, and queues its parameters once more.
    _wait_for(lambda: stored.trials[alive.number].state == TrialState.FAIL)
    retried = _wait_for(lambda: [t for t in stored.trials if t.system_attrs.get("failed_trial") == alive.number])
    assert retried[0].state == TrialState.WAITING


def test_a_beating_trial_is_left_running(served):
    url, database = served
    storage = open_storage(url, heartbeat=1)
    study = optuna.create_study(study_name="b", storage=storage)
    trial = study.ask()
    stored = optuna.load_study(study_name="b", storage=database)
    until = time.monotonic() + 4  # twice the grace, beating every half second
    while time.monotonic() < until:
        storage.record_heartbeat(trial._trial_id)
        time.sleep(0.5)
    assert stored.trials[trial.number].state == TrialState.RUNNING


def test_a_proxy_that_does_not_answer_is_a_lost_storage_within_the_deadline():
    silent = socket.socket()  # takes the connection, never speaks gRPC
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        client = HeartbeatGrpcStorage("127.0.0.1", silent.getsockname()[1], None, timeout=1.0)
        raised: list[BaseException] = []

        def call() -> None:
            try:
                client.get_all_studies()
            except Exception as exc:  # noqa: BLE001
                raised.append(exc)

        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        caller.join(12)  # the deadline is 1 s; without one, gRPC gives up on the handshake after 20 s
        assert not caller.is_alive(), "a call to a silent proxy outlived its deadline"
        assert raised and is_storage_error(raised[0]), raised
    finally:
        silent.close()


def test_no_proxy_at_the_address_is_one_line(cli, monkeypatch):
    from search.storages import _open

    monkeypatch.setitem(_open.NETWORK_TIMEOUTS, "connect", 1)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    code, out, err = cli("studies", "--storage", f"grpc://127.0.0.1:{port}")
    assert code == 1 and err.count("\n") == 1 and "no storage proxy answers at grpc://127.0.0.1:" in err, err


@pytest.mark.parametrize("url", ["grpc://db.internal", "grpc://:13000", "grpc://host:port"])
def test_a_proxy_url_needs_a_host_and_a_port(url):
    with pytest.raises(SearchError, match="needs a host and a port"):
        grpc_address(url)


def test_the_proxy_serves_a_database_not_a_journal(cli, workdir):
    code, out, err = cli("storage-proxy", "--storage", "journal:///s.log", "--port", 0)
    assert code == 1 and "a proxy serves a database" in err and not (workdir / "s.log").exists(), err


def test_a_trial_keeps_its_worker_s_promise_and_the_proxy_beats_for_none(served):
    from search._optuna import rdb_heartbeats
    from search.storages._heartbeat import PROMISE_ATTR

    url, database = served
    study = optuna.create_study(study_name="w", storage=open_storage(url, heartbeat=3))
    trial = study.ask()
    stored = open_storage(database)
    assert stored.get_trial(trial._trial_id).system_attrs[PROMISE_ATTR] == 3  # the worker's, not the proxy's 1
    _, running = rdb_heartbeats(stored, stored.get_study_id_from_name("w"), PROMISE_ATTR)
    assert running[trial._trial_id] == (None, 3)  # no beat in the database: the proxy holds its workers' beats


def test_a_restarted_proxy_gives_a_running_trial_a_full_grace(tmp_path):
    database = f"sqlite:///{tmp_path}/r.db"
    first = StorageProxy(open_storage(database, heartbeat=1), "127.0.0.1", 0).start()
    storage = open_storage(f"grpc://127.0.0.1:{first.port}", heartbeat=2)
    trial = optuna.create_study(study_name="r", storage=storage).ask()
    first.stop()
    time.sleep(4.5)  # longer than the trial's grace (twice its 2 s), with no proxy to hear a beat
    second = StorageProxy(open_storage(database, heartbeat=1), "127.0.0.1", 0).start()
    try:
        stored = optuna.load_study(study_name="r", storage=database)
        _wait_for(lambda: second.looks >= 2)  # it has looked twice: the trial is within its grace from the first
        assert stored.trials[trial.number].state == TrialState.RUNNING
        _wait_for(lambda: stored.trials[trial.number].state == TrialState.FAIL)  # and failed once it is past
    finally:
        second.stop()


def test_a_beat_the_proxy_does_not_take_is_one_line_and_the_beats_go_on(tmp_path, capfd):
    database = f"sqlite:///{tmp_path}/q.db"
    proxy = StorageProxy(open_storage(database, heartbeat=1), "127.0.0.1", 0).start()
    storage = open_storage(f"grpc://127.0.0.1:{proxy.port}", heartbeat=1)
    trial = optuna.create_study(study_name="q", storage=storage).ask()
    proxy.stop()
    storage.record_heartbeat(trial._trial_id)  # no proxy: must not raise (it would end Optuna's beat thread)
    storage.record_heartbeat(trial._trial_id)
    err = capfd.readouterr().err
    assert err.count(f"search: heartbeat of trial id {trial._trial_id} lost the storage") == 1, err
