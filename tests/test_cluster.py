"""Workers on other hosts and a network that fails: network namespaces, a database host, dead links.

Each test builds its hosts (tests/_netns.py): a database host running a throwaway
PostgreSQL (or redis-server) and worker hosts that reach it only across veth links.
The workers run `search run` inside their host with short network timeouts
(SEARCH_READ_TIMEOUT=8, SEARCH_RECONNECT_SECONDS=40: longer than the 30 s outages, whichever call meets them first), so every outcome is bounded:
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
from _pg import PgCluster, free_port, pg_bin
from conftest import storage_line
from optuna.trial import TrialState

# Real outages of 30 s: in the full suite (CI), not the quick one. One xdist worker runs them
# one after another (they mostly wait out outages) while the others run the rest.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cluster")]

TRIAL_SPACE = "hidden_units: 128\nepochs: 25\nbatch_size: 64\noptimizer: sgd\n"  # about 2-4 s a trial
BOUND = 90  # seconds: a worker on a dead link must have exited by then (read 8 + reconnect 40 + connects)
ENV = {"SEARCH_READ_TIMEOUT": "8", "SEARCH_RECONNECT_SECONDS": "40", "PYTHONUNBUFFERED": "1"}


def made_hosts(workers: int):
    """Worker hosts and a database host, removed afterwards; a one-line skip where namespaces cannot be made."""
    from _netns import Hosts

    try:
        made = Hosts(workers=workers)
    except RuntimeError as exc:
        pytest.skip(f"network namespaces cannot be made here: {exc}")
    try:
        yield made
    finally:
        made.remove()


@pytest.fixture
def hosts():
    yield from made_hosts(2)


class Postgres:
    # Every statement in the log, each line led by the client's address: the workers' round
    # trips are the lines from the namespace addresses (the test's own reads use the socket).
    COUNTED = {"log_statement": "'all'", "log_line_prefix": "'%h '"}

    def __init__(self, hosts, count: bool = False):
        if pg_bin() is None:
            pytest.skip("PostgreSQL's initdb is not installed")
        self.cluster = PgCluster(host="*", netns=hosts.db, settings=self.COUNTED if count else None)
        self.cluster.start()
        self.hosts = hosts

    def round_trips(self) -> int:
        log = (self.cluster.dir / "log").read_text(errors="replace")
        return sum(
            1
            for line in log.splitlines()
            if line.startswith("10.") and (" LOG:  statement: " in line or " LOG:  execute " in line)
        )

    def connections(self) -> int:
        out = subprocess.run(
            [
                "psql",
                "-h",
                str(self.cluster.dir),
                "-p",
                str(self.cluster.port),
                "-U",
                "root",
                "-d",
                "postgres",
                "-tAc",
                "SELECT count(*) FROM pg_stat_activity WHERE client_addr IS NOT NULL",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return int(out.stdout.strip() or 0)

    def url_for(self, worker: int) -> str:
        return f"postgresql://root@{self.hosts.db_address(worker)}:{self.cluster.port}/postgres"

    @property
    def local(self) -> str:  # the test's own view, through the cluster's unix socket
        return f"postgresql://root@/postgres?host={self.cluster.dir}&port={self.cluster.port}"

    def remove(self):
        self.cluster.remove()


class Proxy(Postgres):
    """Optuna's gRPC storage proxy (`search storage-proxy`) on the database host, in front of its PostgreSQL:
    the workers reach only the proxy; the proxy reaches the database on the host's own loopback."""

    def __init__(self, hosts, count: bool = False):
        super().__init__(hosts, count)
        self.port = free_port()
        self.start_proxy()

    def start_proxy(self) -> None:
        database = f"postgresql://root@127.0.0.1:{self.cluster.port}/postgres"
        command = ["ip", "netns", "exec", self.hosts.db, sys.executable, "-m", "search", "storage-proxy"]
        command += ["--storage", database, "--port", str(self.port)]
        env = {**os.environ, **ENV}
        self.proxy = subprocess.Popen(command, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proxy.stdout.readline()  # the event: it serves
        assert "storage proxy for" in line, self.proxy.communicate()[1][-2000:]

    def stop_proxy(self) -> None:
        self.proxy.kill()
        self.proxy.communicate()

    def url_for(self, worker: int) -> str:
        return f"grpc://{self.hosts.db_address(worker)}:{self.port}"

    def round_trips(self) -> int:  # the proxy's statements, from the host's loopback
        log = (self.cluster.dir / "log").read_text(errors="replace")
        return sum(
            1
            for line in log.splitlines()
            if line.startswith("127.0.0.1 ") and (" LOG:  statement: " in line or " LOG:  execute " in line)
        )

    def remove(self):
        if self.proxy.poll() is None:
            self.stop_proxy()
        super().remove()


class Redis:
    def __init__(self, hosts):
        self.dir = Path(tempfile.mkdtemp(prefix="search-redis-"))
        self.port = free_port()
        self.socket = self.dir / "redis.sock"
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                hosts.db,
                "redis-server",
                "--bind",
                "0.0.0.0",
                "--port",
                str(self.port),
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "777",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--daemonize",
                "yes",
                "--dir",
                str(self.dir),
                "--logfile",
                str(self.dir / "log"),
            ],
            check=True,
            timeout=30,
        )
        deadline = time.monotonic() + 30
        while not self.socket.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.hosts = hosts

    def url_for(self, worker: int) -> str:
        return f"redis://{self.hosts.db_address(worker)}:{self.port}/0"

    def _info(self, section: str) -> dict:
        import redis

        return redis.Redis(unix_socket_path=str(self.socket)).info(section)

    def round_trips(self) -> int:  # commands the server ran; each command in an append script counts
        return self._info("stats")["total_commands_processed"]

    def connections(self) -> int:
        return self._info("clients")["connected_clients"] - 1  # less the test's own

    @property
    def local(self) -> str:
        return f"unix://{self.socket}?db=0"

    def remove(self):
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)  # the process dies with the db host


class MySQL:
    def __init__(self, hosts):
        from _mariadb import MariaDB, mariadb_bin

        if mariadb_bin() is None:
            pytest.skip("MariaDB (mariadbd, mariadb-install-db) is not installed")
        self.server = MariaDB(netns=hosts.db)
        self.hosts = hosts

    def url_for(self, worker: int) -> str:
        return f"mysql+pymysql://root@{self.hosts.db_address(worker)}:{self.server.port}/test"

    @property
    def local(self) -> str:
        return f"mysql+pymysql://root@localhost/test?unix_socket={self.server.socket}"

    def round_trips(self) -> int:  # statements, and pings (SQLAlchemy's pre-ping is a COM_PING)
        return sum(self.server.status("Questions", "Com_admin_commands").values())

    def connections(self) -> int:
        return self.server.status("Threads_connected")["Threads_connected"] - 1

    def deadlocks(self) -> int:  # transactions InnoDB rolled back to break a deadlock (each run again by the worker)
        return self.server.status("Innodb_deadlocks")["Innodb_deadlocks"]

    def remove(self):
        self.server.remove()


@pytest.fixture(params=["postgresql", "redis"])
def db(request, hosts):
    server = Postgres(hosts) if request.param == "postgresql" else Redis(hosts)
    try:
        yield server
    finally:
        server.remove()


def worker(hosts, db, index: int, study: str, n: int, space: Path, *more: str) -> subprocess.Popen:
    """`search run` on worker host ``index``, in a folder of its own (no shared filesystem)."""
    home = space.parent / f"host{index}-{uuid.uuid4().hex[:6]}"  # under the test's tmp_path: removed with it
    home.mkdir()
    (home / "space.yaml").write_text(space.read_text())
    command = [
        "ip",
        "netns",
        "exec",
        hosts.workers[index],
        sys.executable,
        "-m",
        "search",
        "run",
        "--study",
        study,
        "--storage",
        db.url_for(index),
        "--dataset",
        "synthetic",
        "--limit-train",
        "2000",
        "--space",
        "space.yaml",
        "--n-trials",
        str(n),
        "--heartbeat",
        "2",
        "--pruner",
        "none",
        "--confirm",
        "0",
        *more,
    ]
    env = {**os.environ, **ENV}
    env.pop("SEARCH_STORAGE", None)
    return subprocess.Popen(command, cwd=home, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def trials(db, study):
    from search import open_storage

    try:
        return optuna.load_study(study_name=study, storage=open_storage(db.local)).get_trials(deepcopy=False)
    except KeyError:
        return []


def wait_for(predicate, timeout=120.0, running=()):
    """``predicate``'s first true value; fails at once if one of the ``running`` processes has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        ended = [p for p in running if p.poll() is not None]
        if ended:
            raise AssertionError(f"a worker exited before the awaited state: {ended[0].communicate()[1][-2000:]}")
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def mid_trial(db, study):
    """A trial under way that has reported an epoch."""
    return next((t for t in trials(db, study) if t.state == TrialState.RUNNING and t.intermediate_values), None)


def check_study(db, study, finished_before):
    """None RUNNING, numbers without gaps, each FAIL retried once with the parameters the database has for it,
    finished values unchanged. A copy that fails in turn (under load its heartbeat, too, can look stale) is not
    copied again (`MAX_RETRY`).

    A trial's parameters reach the database with its first epoch's report (`search.storages._buffer`): one
    created just before the link went down has none stored, and its retry samples afresh."""
    done = trials(db, study)
    numbers = sorted(t.number for t in done)
    assert numbers == list(range(len(numbers)))
    assert not [t for t in done if t.state == TrialState.RUNNING]
    for failed in (t for t in done if t.state == TrialState.FAIL and "failed_trial" not in t.system_attrs):
        retries = [t for t in done if t.system_attrs.get("failed_trial") == failed.number]
        assert len(retries) == 1, _told(failed, done)
        assert retries[0].params == failed.params or not failed.params, failed.number
    by_number = {t.number: t.value for t in done}
    assert {n: by_number[n] for n in finished_before} == finished_before
    return done


def _told(failed, done) -> str:
    """What the study holds on a failed trial and its copies: a failing check says more than a number."""
    copies = [(t.number, t.state.name) for t in done if t.system_attrs.get("failed_trial") == failed.number]
    return (
        f"trial {failed.number}: params {failed.params}, user attrs {failed.user_attrs}, "
        f"system attrs {failed.system_attrs}, copies {copies}"
    )


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
    # The first host has work enough to outlast the second's start-up (torch's import, on a
    # loaded machine, can take longer than three of these trials).
    first = worker(hosts, db, 0, study, 8, space)
    wait_for(lambda: trials(db, study))  # the study exists before the second host joins
    second = worker(hosts, db, 1, study, 3, space)
    wait_for(
        lambda: len([t for t in trials(db, study) if t.state == TrialState.RUNNING and t.params]) == 2,
        running=(first, second),
    )
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


# Load: 16 workers (4 hosts x --jobs 4) share one study of 200 short trials.
LOAD_HOSTS, LOAD_JOBS, LOAD_TRIALS = 4, 4, 200
LOAD_SPACE = (
    "hidden_units: 16\nepochs: 1\nbatch_size: 64\n"  # lr, optimizer and momentum sampled; a trial trains for ~20 ms
)


@pytest.fixture
def four_hosts():
    yield from made_hosts(LOAD_HOSTS)


@pytest.fixture(params=["postgresql", "mysql", "redis", "grpc"])
def loaded_db(request, four_hosts):
    kinds = {
        "postgresql": lambda h: Postgres(h, count=True),
        "mysql": MySQL,
        "redis": Redis,
        "grpc": lambda h: Proxy(h, count=True),
    }
    server = kinds[request.param](four_hosts)
    try:
        yield server
    finally:
        server.remove()


def test_16_workers_on_4_hosts_share_200_trials(four_hosts, loaded_db, tmp_path, request):
    db, study = loaded_db, f"l{uuid.uuid4().hex[:8]}"
    space = tmp_path / "space.yaml"
    space.write_text(LOAD_SPACE)
    per_host = LOAD_TRIALS // LOAD_HOSTS
    first = db.round_trips()
    started = time.monotonic()
    runs = [
        # A beat every 10 s: 16 processes on a loaded 2-core machine can starve a 2 s beat past its 4 s grace, and
        # another worker then rightly fails a live trial (a copy runs; tested apart): here nothing is to fail.
        worker(
            four_hosts,
            db,
            i,
            study,
            per_host,
            space,
            "--jobs",
            str(LOAD_JOBS),
            "--limit-train",
            "256",
            "--heartbeat",
            "10",
        )
        for i in range(LOAD_HOSTS)
    ]
    peak = 0
    while any(run.poll() is None for run in runs):  # sample the open connections until every host is done
        peak = max(peak, db.connections())
        time.sleep(0.5)
    wall = time.monotonic() - started
    outputs = [run.communicate() for run in runs]
    for run, (_out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0 and "Traceback" not in err, err
    round_trips = db.round_trips() - first

    done = trials(db, study)
    # On failure: what the workers said, and each extra trial's state and recorded reason.
    told_us = "\n".join(line for _, err in outputs for line in err.splitlines() if line.startswith("search"))
    extra = [
        (t.number, t.state.name, t.user_attrs.get("error"), t.system_attrs.get("failed_trial"))
        for t in done
        if t.state != TrialState.COMPLETE or "failed_trial" in t.system_attrs
    ]
    assert sorted(t.number for t in done) == list(range(LOAD_TRIALS)), (extra, told_us)  # nothing lost, nothing twice
    assert all(t.state == TrialState.COMPLETE for t in done)  # none RUNNING, none failed
    assert len({t.params["lr"] for t in done}) == LOAD_TRIALS  # no two workers drew the same point
    told = sum(int(out.split("this run:  ", 1)[1].split()[0]) for out, _ in outputs)
    assert told == LOAD_TRIALS  # each host ran exactly its share

    waited = [storage_line(out) for out, _ in outputs]
    calls = sum(c for c, _ in waited)
    shares = ", ".join(f"{share:.0%}" for _, share in waited)
    print(
        f"\n{request.node.callspec.id}: {LOAD_HOSTS} hosts x {LOAD_JOBS} workers, {LOAD_TRIALS} trials in {wall:.1f} s "
        f"({LOAD_TRIALS / wall:.1f} trials/s); {round_trips / LOAD_TRIALS:.1f} round trips a trial at the server, "
        f"{calls / LOAD_TRIALS:.1f} storage calls a trial at the workers; share of the workers' time waiting "
        f"on the storage, per host: {shares}; peak {peak} connections"
        + (f"; {db.deadlocks()} deadlocks broken by the server" if hasattr(db, "deadlocks") else "")
    )
    assert 0 < round_trips and calls >= LOAD_TRIALS * 5
    if isinstance(db, Proxy):  # the database serves one process, not two connections a worker
        assert peak < 2 * LOAD_HOSTS * LOAD_JOBS, peak


# The storage proxy: the faults a worker's own storage can have, through `grpc://`.


@pytest.fixture
def proxy(hosts):
    server = Proxy(hosts)
    try:
        yield server
    finally:
        server.remove()


def test_a_worker_s_link_to_the_proxy_cut_mid_trial(hosts, proxy, space):
    study = f"g{uuid.uuid4().hex[:8]}"
    w = worker(hosts, proxy, 0, study, 3, space)
    wait_for(lambda: mid_trial(proxy, study), running=(w,))
    before = {t.number: t.value for t in trials(proxy, study) if t.state == TrialState.COMPLETE}
    hosts.link(0, up=False)
    time.sleep(15)  # the outage: past the calls' 8 s deadline, within the 40 s of waiting for the storage
    hosts.link(0, up=True)
    out, err = w.communicate(timeout=300)
    assert w.returncode == 0 and "Traceback" not in err, err
    check_study(proxy, study, before)
    assert len([line for line in out.splitlines() if line.startswith("[")]) == 3


def test_the_proxy_restarted_mid_trial(hosts, proxy, space):
    study = f"g{uuid.uuid4().hex[:8]}"
    w = worker(hosts, proxy, 0, study, 3, space)
    wait_for(lambda: mid_trial(proxy, study), running=(w,))
    before = {t.number: t.value for t in trials(proxy, study) if t.state == TrialState.COMPLETE}
    proxy.stop_proxy()
    proxy.start_proxy()
    out, err = w.communicate(timeout=300)
    assert w.returncode == 0 and "Traceback" not in err, err
    check_study(proxy, study, before)


def test_a_worker_killed_behind_the_proxy_has_its_trial_failed_by_the_proxy_and_retried(hosts, proxy, space):
    study = f"g{uuid.uuid4().hex[:8]}"
    worker(hosts, proxy, 0, study, 3, space)
    victim = wait_for(lambda: mid_trial(proxy, study))
    before = {t.number: t.value for t in trials(proxy, study) if t.state == TrialState.COMPLETE}
    hosts.kill_host(hosts.workers[0])
    # The proxy, not a worker, fails it: on the database's clock, twice the 2 s heartbeat after its last beat.
    wait_for(lambda: {t.number: t for t in trials(proxy, study)}[victim.number].state == TrialState.FAIL, timeout=60)
    other = worker(hosts, proxy, 1, study, 2, space)
    out, err = other.communicate(timeout=300)
    assert other.returncode == 0, err
    done = check_study(proxy, study, before)
    assert {t.number: t for t in done}[victim.number].state == TrialState.FAIL  # and re-run once (check_study)
