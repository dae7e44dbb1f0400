"""Workers on other hosts and a network that fails: network namespaces, a database host, dead links.

Each test builds its hosts (tests/_netns.py): a database host running a throwaway
PostgreSQL (or redis-server) and worker hosts that reach it only across veth links.
The workers run `search run` inside their host with short network timeouts
(SEARCH_READ_TIMEOUT=8, SEARCH_RECONNECT_SECONDS=20), so every outcome is bounded:
a worker either carries on or exits non-zero with one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from _pg import PgCluster, free_port, pg_bin

pytestmark = pytest.mark.slow  # real outages of 30 s: in the full suite (CI), not the quick one

TRIAL_SPACE = "hidden_units: 128\nepochs: 25\nbatch_size: 64\noptimizer: sgd\n"  # about 2-4 s a trial
BOUND = 90  # seconds: a worker on a dead link must have exited by then (read 8 + reconnect 20 + connects)
ENV = {"SEARCH_READ_TIMEOUT": "8", "SEARCH_RECONNECT_SECONDS": "20", "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def hosts():
    from _netns import Hosts

    try:
        made = Hosts(workers=2)
    except RuntimeError as exc:
        pytest.skip(f"network namespaces cannot be made here: {exc}")
    try:
        yield made
    finally:
        made.remove()


class Postgres:
    def __init__(self, hosts):
        if pg_bin() is None:
            pytest.skip("PostgreSQL's initdb is not installed")
        self.cluster = PgCluster(host="*", netns=hosts.db)
        self.cluster.start()
        self.hosts = hosts

    def url_for(self, worker: int) -> str:
        return f"postgresql://root@{self.hosts.db_address(worker)}:{self.cluster.port}/postgres"

    @property
    def local(self) -> str:  # the test's own view, through the cluster's unix socket
        return f"postgresql://root@/postgres?host={self.cluster.dir}&port={self.cluster.port}"

    def remove(self):
        self.cluster.remove()


class Redis:
    def __init__(self, hosts):
        self.dir = Path(tempfile.mkdtemp(prefix="search-redis-"))
        self.port = free_port()
        self.socket = self.dir / "redis.sock"
        subprocess.run(["ip", "netns", "exec", hosts.db, "redis-server", "--bind", "0.0.0.0", "--port", str(self.port),
                        "--unixsocket", str(self.socket), "--unixsocketperm", "777", "--save", "", "--appendonly", "no",
                        "--protected-mode", "no", "--daemonize", "yes", "--dir", str(self.dir), "--logfile", str(self.dir / "log")],
                       check=True, timeout=30)
        deadline = time.monotonic() + 30
        while not self.socket.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.hosts = hosts

    def url_for(self, worker: int) -> str:
        return f"redis://{self.hosts.db_address(worker)}:{self.port}/0"

    @property
    def local(self) -> str:
        return f"unix://{self.socket}?db=0"

    def remove(self):
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)  # the process dies with the db host


@pytest.fixture(params=["postgresql", "redis"])
def db(request, hosts):
    server = Postgres(hosts) if request.param == "postgresql" else Redis(hosts)
    try:
        yield server
    finally:
        server.remove()


def worker(hosts, db, index: int, study: str, n: int, space: Path) -> subprocess.Popen:
    """`search run` on worker host ``index``, in a folder of its own (no shared filesystem)."""
    home = space.parent / f"host{index}-{uuid.uuid4().hex[:6]}"  # under the test's tmp_path: removed with it
    home.mkdir()
    (home / "space.yaml").write_text(space.read_text())
    command = ["ip", "netns", "exec", hosts.workers[index], sys.executable, "-m", "search", "run", "--study", study,
               "--storage", db.url_for(index), "--dataset", "synthetic", "--limit-train", "2000", "--space", "space.yaml",
               "--n-trials", str(n), "--heartbeat", "2", "--pruner", "none", "--confirm", "0"]
    env = {**os.environ, **ENV}
    env.pop("SEARCH_STORAGE", None)
    return subprocess.Popen(command, cwd=home, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def trials(db, study):
    from search import open_storage

    try:
        return optuna.load_study(study_name=study, storage=open_storage(db.local)).get_trials(deepcopy=False)
    except KeyError:
        return []


def wait_for(predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def mid_trial(db, study):
    """A trial under way that has reported an epoch."""
    return next((t for t in trials(db, study) if t.state == TrialState.RUNNING and t.intermediate_values), None)


def check_study(db, study, finished_before):
    """None RUNNING, numbers without gaps, each FAIL retried once, finished values unchanged."""
    done = trials(db, study)
    numbers = sorted(t.number for t in done)
    assert numbers == list(range(len(numbers)))
    assert not [t for t in done if t.state == TrialState.RUNNING]
    for failed in (t for t in done if t.state == TrialState.FAIL):
        retries = [t for t in done if t.system_attrs.get("failed_trial") == failed.number]
        assert len(retries) == 1 and retries[0].params == failed.params, failed.number
    by_number = {t.number: t.value for t in done}
    assert {n: by_number[n] for n in finished_before} == finished_before
    return done


@pytest.fixture
def space(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(TRIAL_SPACE)
    return path


def test_a_30_second_link_blip_mid_trial(hosts, db, space):
    study = f"c{uuid.uuid4().hex[:8]}"
    w = worker(hosts, db, 0, study, 4, space)
    wait_for(lambda: mid_trial(db, study))
    before = {t.number: t.value for t in trials(db, study) if t.state == TrialState.COMPLETE}
    hosts.link(0, up=False)
    time.sleep(30)  # the fault itself lasts 30 s (the test waits on nothing: it is the outage)
    hosts.link(0, up=True)
    out, err = w.communicate(timeout=300)
    assert w.returncode == 0, err
    assert "Traceback" not in err
    check_study(db, study, before)
    told = [line for line in out.splitlines() if line.startswith("[")]
    assert len(told) == 4  # the worker ran every trial it was asked for


def test_a_link_down_for_good_ends_the_worker_and_another_host_retries_its_trial(hosts, db, space):
    study = f"c{uuid.uuid4().hex[:8]}"
    lost = worker(hosts, db, 0, study, 3, space)
    victim = wait_for(lambda: mid_trial(db, study))
    before = {t.number: t.value for t in trials(db, study) if t.state == TrialState.COMPLETE}
    hosts.link(0, up=False)
    started = time.monotonic()
    out, err = lost.communicate(timeout=BOUND + 60)
    assert time.monotonic() - started <= BOUND
    assert lost.returncode == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("search: error: the storage") and "has not answered" in err
    time.sleep(4.5)  # past the grace period (twice the 2 s heartbeat) since the lost host's last beat
    other = worker(hosts, db, 1, study, 2, space)
    out, err = other.communicate(timeout=300)
    assert other.returncode == 0, err
    done = check_study(db, study, before)
    dead = {t.number: t for t in done}[victim.number]
    assert dead.state == TrialState.FAIL  # failed by the other host, and re-run once (check_study)


def test_a_whole_host_killed_mid_trial(hosts, db, space):
    study = f"c{uuid.uuid4().hex[:8]}"
    worker(hosts, db, 0, study, 3, space)
    victim = wait_for(lambda: mid_trial(db, study))
    before = {t.number: t.value for t in trials(db, study) if t.state == TrialState.COMPLETE}
    hosts.kill_host(hosts.workers[0])
    time.sleep(4.5)  # past the grace period since its last beat
    other = worker(hosts, db, 1, study, 2, space)
    out, err = other.communicate(timeout=300)
    assert other.returncode == 0, err
    done = check_study(db, study, before)
    assert {t.number: t for t in done}[victim.number].state == TrialState.FAIL


def test_the_database_link_down_30_seconds_while_two_hosts_work(hosts, db, space):
    study = f"c{uuid.uuid4().hex[:8]}"
    first = worker(hosts, db, 0, study, 3, space)
    wait_for(lambda: trials(db, study))  # the study exists before the second host joins
    second = worker(hosts, db, 1, study, 3, space)
    wait_for(lambda: len([t for t in trials(db, study) if t.state == TrialState.RUNNING and t.params]) == 2)
    before = {t.number: t.value for t in trials(db, study) if t.state == TrialState.COMPLETE}
    hosts.link(0, up=False)
    hosts.link(1, up=False)
    time.sleep(30)
    hosts.link(0, up=True)
    hosts.link(1, up=True)
    for w in (first, second):
        out, err = w.communicate(timeout=300)
        assert w.returncode == 0 and "Traceback" not in err, err
    check_study(db, study, before)
