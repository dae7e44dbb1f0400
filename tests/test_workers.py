"""Many workers and faults, against the real services on this machine.

PostgreSQL 127.0.0.1:5432, MariaDB 127.0.0.1:3306 and Redis 127.0.0.1:6379 (`.ci/run`
starts any that are down). Workers are real processes (`python -m search run`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from conftest import storage_line

STORAGES = {
    "journal": lambda tmp: f"journal:///{tmp}/study.log",
    "postgresql": lambda tmp: "postgresql://root@127.0.0.1:5432/test",
    "mysql": lambda tmp: "mysql+pymysql://root@127.0.0.1:3306/test",
    "redis": lambda tmp: "redis://127.0.0.1:6379/0",
}
TINY = "hidden_units: 16\nepochs: {low: 1, high: 2}\nbatch_size: 64\n"
# About 3-4 s a trial on 2 cores: long enough to be caught mid-trial, short enough to re-run.
LONG = "hidden_units: 128\nepochs: 60\nbatch_size: 64\noptimizer: sgd\n"


@pytest.fixture
def name():
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def space(tmp_path):
    def write(text: str) -> str:
        path = tmp_path / f"space{abs(hash(text))}.yaml"
        path.write_text(text)
        return str(path)

    return write


def search(tmp_path, *args, popen: dict | None = None):
    from conftest import quick_run

    command = [sys.executable, "-m", "search", *quick_run([str(a) for a in args])]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("SEARCH_STORAGE", None)
    if popen is not None:
        return subprocess.Popen(command, cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)
    return subprocess.run(command, cwd=tmp_path, env=env, text=True, capture_output=True, timeout=300)


def open_study(url, name):
    from search import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(url))


@pytest.fixture
def cleanup():
    made = []
    yield made.append
    for url, name in made:
        try:
            optuna.delete_study(study_name=name, storage=_storage(url))
        except KeyError:  # the test never got as far as making it
            pass


def _storage(url):
    from search import open_storage

    return open_storage(url)


def wait_for(predicate, timeout=60.0, every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


def read_until(stream, text: str) -> str:
    """Lines from ``stream`` up to and including one that contains ``text`` (the event waited on)."""
    seen = []
    for line in stream:
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"the stream ended without {text!r}: {''.join(seen)}")


def trials_in(url, name, state):
    try:
        return open_study(url, name).get_trials(deepcopy=False, states=(state,))
    except KeyError:  # the study does not exist yet
        return []


def running_trial(url, name):
    """A trial under way: RUNNING and past sampling (Optuna's RDB heartbeat starts with the
    objective; a kill in the milliseconds before it is not the fault these tests model)."""
    trials = [t for t in trials_in(url, name, TrialState.RUNNING) if t.params]
    return trials[0] if trials else None


@pytest.mark.parametrize("kind", list(STORAGES))
def test_workers_share_a_study_exactly(tmp_path, space, name, cleanup, kind):
    """N workers x M trials: exactly N*M trials, numbered 0..N*M-1, none left RUNNING."""
    url = STORAGES[kind](tmp_path)
    cleanup((url, name))
    workers, per_worker = 2, 4
    result = search(tmp_path, "run", "--study", name, "--storage", url, "--dataset", "synthetic", "--limit-train", 300,
                    "--space", space(TINY), "--jobs", workers, "--n-trials", workers * per_worker)
    assert result.returncode == 0, result.stderr
    trials = open_study(url, name).get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(workers * per_worker))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert {line.split()[0] for line in result.stdout.splitlines() if line.startswith("[w")} == {"[w0", "[w1"}
    assert f"this run:  {workers * per_worker} trials" in result.stdout
    # Both workers' calls: each trial asks, sets parameters, reports epochs and is told.
    assert storage_line(result.stdout)[0] >= workers * per_worker * 5, result.stdout


@pytest.mark.parametrize("kind", ["journal", "postgresql"])
def test_killed_worker_trial_is_failed_and_rerun_once(tmp_path, space, name, cleanup, kind):
    url = STORAGES[kind](tmp_path)
    cleanup((url, name))
    args = ["run", "--study", name, "--storage", url, "--dataset", "synthetic", "--limit-train", 2000,
            "--space", space(LONG), "--heartbeat", 1, "--pruner", "none"]
    worker = search(tmp_path, *args, "--n-trials", 1, popen={})
    victim = wait_for(lambda: running_trial(url, name))
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    time.sleep(2.5)  # past the grace period (twice the heartbeat)

    result = search(tmp_path, *args, "--n-trials", 1)
    assert result.returncode == 0, result.stderr
    trials = open_study(url, name).get_trials(deepcopy=False)
    dead, retry = trials
    assert dead.number == victim.number and dead.state == TrialState.FAIL
    assert retry.state == TrialState.COMPLETE and retry.params == dead.params
    assert retry.system_attrs["failed_trial"] == dead.number


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_fails_the_running_trial_and_says_how_to_continue(tmp_path, space, name, sig):
    url = f"sqlite:///{tmp_path}/s.db"
    worker = search(tmp_path, "run", "--study", name, "--storage", url, "--dataset", "synthetic",
                    "--limit-train", 2000, "--space", space(LONG), "--n-trials", 3, popen={})
    wait_for(lambda: running_trial(url, name))
    worker.send_signal(sig)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 130
    assert "interrupted" in err and f"Continue with: search run --study {name}" in err and "Traceback" not in err
    (trial,) = open_study(url, name).get_trials(deepcopy=False)
    assert trial.state == TrialState.FAIL


def test_ctrl_c_reaches_every_worker(tmp_path, space, name):
    url = f"journal:///{tmp_path}/j.log"
    group = search(tmp_path, "run", "--study", name, "--storage", url, "--dataset", "synthetic", "--limit-train", 2000,
                   "--space", space(LONG), "--n-trials", 4, "--jobs", 2, popen={"start_new_session": True})
    # Both workers under way: a worker that started late is caught in its first trial all the same.
    wait_for(lambda: {t.user_attrs.get("run", {}).get("id") for t in trials_in(url, name, TrialState.RUNNING) if t.params} and
             len({t.number for t in trials_in(url, name, TrialState.RUNNING) if t.params}) == 2, timeout=120)
    running = {t.number for t in trials_in(url, name, TrialState.RUNNING)}
    os.killpg(group.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out, err = group.communicate(timeout=120)
    assert group.returncode == 130 and "Continue with" in err and "Traceback" not in err
    trials = open_study(url, name).get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert {t.number for t in trials if t.state == TrialState.FAIL} == running
    assert len(trials) < 4  # the workers stopped; they did not run their remaining trials


def test_sigint_reaches_a_worker_that_inherited_it_ignored(tmp_path, space, name):
    """A background job of a non-interactive shell starts with SIGINT ignored; Ctrl-C must still stop it."""
    url = f"sqlite:///{tmp_path}/s.db"
    worker = search(tmp_path, "run", "--study", name, "--storage", url, "--dataset", "synthetic", "--limit-train", 2000,
                    "--space", space(LONG), "--n-trials", 3,
                    popen={"preexec_fn": lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)})
    wait_for(lambda: running_trial(url, name), timeout=120)
    worker.send_signal(signal.SIGINT)
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 130 and "Traceback" not in err
    assert [t.state for t in open_study(url, name).get_trials(deepcopy=False)] == [TrialState.FAIL]


@pytest.mark.parametrize("after", [1, 2, 3])
def test_ctrl_c_between_trials_leaves_nothing_running(tmp_path, space, name, after):
    """Trials so short that a signal lands mostly in storage calls (ask, tell): still exit 130, one line."""
    url = f"sqlite:///{tmp_path}/s.db"
    worker = search(tmp_path, "run", "--study", name, "--storage", url, "--dataset", "synthetic", "--limit-train", 64,
                    "--space", space("hidden_units: 8\nepochs: 1\nbatch_size: 64\n"), "--n-trials", 400, popen={})
    wait_for(lambda: len(trials_in(url, name, TrialState.COMPLETE)) >= after * 5, timeout=120)
    worker.send_signal(signal.SIGINT)
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    trials = open_study(url, name).get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING] and len(trials) < 400


@pytest.fixture
def own_pg():
    """A PostgreSQL cluster this test owns (its restart disturbs nothing else)."""
    from _pg import PgCluster, pg_bin

    if pg_bin() is None:
        pytest.skip("PostgreSQL's initdb is not installed")
    cluster = PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


def test_postgresql_restart_mid_trial_loses_nothing(tmp_path, space, name, own_pg):
    url = own_pg.url
    worker = search(tmp_path, "run", "--study", name, "--storage", url, "--dataset", "synthetic", "--limit-train", 1000,
                    "--space", space("hidden_units: 64\nepochs: 30\nbatch_size: 64\n"), "--n-trials", 4,
                    "--heartbeat", 1, "--pruner", "none", popen={})
    wait_for(lambda: len(trials_in(url, name, TrialState.COMPLETE)) >= 1, timeout=120)
    # The outage lands mid-trial: a trial is running and has reported an epoch.
    victim = wait_for(lambda: next((t for t in trials_in(url, name, TrialState.RUNNING) if t.intermediate_values), None), timeout=120)
    before = {t.number: t.value for t in open_study(url, name).get_trials(states=(TrialState.COMPLETE,))}
    own_pg.stop("immediate")
    seen = read_until(worker.stderr, "reconnecting")  # the worker's main loop noticed (it reports every epoch)
    own_pg.start()
    out, rest = worker.communicate(timeout=300)
    rest = seen + rest
    assert worker.returncode == 0, rest
    trials = open_study(url, name).get_trials(deepcopy=False)
    assert {t.number: t.value for t in trials if t.number in before} == before  # nothing finished was lost
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    dead = {t.number: t for t in trials}[victim.number]
    # The running trial either reconnected and finished, or was failed and its parameters re-run once.
    if dead.state == TrialState.FAIL:
        assert [t for t in trials if t.system_attrs.get("failed_trial") == dead.number and t.params == dead.params]
    else:
        assert dead.state == TrialState.COMPLETE
    assert sum(t.state == TrialState.COMPLETE for t in trials) >= 4
    assert "Traceback" not in rest and "the storage is back" in rest


def pg_dump() -> list[str]:
    dump = subprocess.run(["pg_dump", "-h", "127.0.0.1", "-U", "root", "--data-only", "test"], capture_output=True, text=True, check=True).stdout
    return [line for line in dump.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))]  # per-dump random tokens


def test_bad_input_leaves_a_postgresql_study_unchanged(tmp_path, space, name, cleanup, cli):
    url = STORAGES["postgresql"](tmp_path)
    cleanup((url, name))
    tiny = space(TINY)
    base = ["--study", name, "--storage", url, "--dataset", "synthetic", "--limit-train", "300", "--space", tiny]
    assert cli("run", *base, "--n-trials", "2")[0] == 0
    (tmp_path / "bad.yaml").write_text("lr: {low: 1, high: 0.1}\n")
    (tmp_path / "broken.yaml").write_text("params: [\n")
    before = pg_dump()
    cases = [
        ("run", *base, "--n-trials", "-3"),
        ("run", *base, "--sampler", "nope"),
        ("run", "--study", name, "--storage", url, "--dataset", "synthetic", "--space", tmp_path / "bad.yaml"),
        ("run", "--study", name, "--storage", url, "--dataset", "mnist", "--data-dir", tmp_path / "none"),
        ("run", "--study", name, "--storage", url, "--dataset", "synthetic", "--limit-train", "301", "--space", tiny),
        ("run", *base, "--jobs", "0"),
        ("run", *base, "--heartbeat", "-1"),
        ("run", "--study", name, "--storage", "postgresql://root:pw@127.0.0.1:5432/no_such_db", "--dataset", "synthetic"),
        ("best", "--study", "missing-" + name, "--storage", url),
        ("export", "--study", name, "--storage", url, "--output", tmp_path / "x.txt"),
        ("train", "--config", tmp_path / "broken.yaml"),
        ("delete", "--study", "missing-" + name, "--storage", url, "--yes"),
        ("trials", "--study", name, "--storage", url, "--format", "xml"),
    ]
    for args in cases:
        code, out, err = cli(*args)
        assert code in (1, 2), args
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (args, err)
        assert "pw@" not in err
    assert pg_dump() == before


def test_password_is_never_printed(tmp_path, space, name, cleanup, cli, workdir):
    """PostgreSQL here trusts local users, so a URL with a password works: it must never show."""
    url = "postgresql://root:s3cretpw@127.0.0.1:5432/test"
    cleanup((url, name))
    seen = []
    for args in (
        ("run", "--study", name, "--storage", url, "--dataset", "synthetic", "--limit-train", "300", "--space", space(TINY), "--n-trials", "2"),
        ("studies", "--storage", url),
        ("studies", "--storage", url, "--json"),
        ("best", "--study", name, "--storage", url, "--json"),
        ("export", "--study", name, "--storage", url, "--output", "best.yaml"),
        ("report", "--study", name, "--storage", url, "--output", "r.html"),
        ("trials", "--study", name, "--storage", url, "--format", "csv"),
        ("run", "--study", name, "--storage", url, "--dataset", "mnist", "--data-dir", "nowhere"),
    ):
        code, out, err = cli(*args)
        assert code == (1 if "nowhere" in args else 0), (args, err)
        seen.append(out + err)
    text = "\n".join(seen) + (workdir / "best.yaml").read_text() + (workdir / "r.html").read_text()
    assert "root:***@127.0.0.1" in text and "s3cretpw" not in text
    assert "continue it with: search run --study" in text


@pytest.mark.parametrize("url", [
    "postgresql://root:s3cretpw@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test?password=s3cretpw",
])
def test_password_is_never_printed_in_any_form(tmp_path, space, name, cleanup, cli, workdir, url):
    """The --storage=URL form, and a password given as a query parameter."""
    cleanup((url, name))
    code, out, err = cli("run", "--study", name, f"--storage={url}", "--dataset", "synthetic", "--limit-train", "300",
                         "--space", space(TINY), "--n-trials", "1")
    assert code == 0, err
    assert cli("export", "--study", name, "--storage", url, "--output", "best.yaml")[0] == 0
    assert cli("report", "--study", name, "--storage", url, "--output", "r.html")[0] == 0
    text = out + err + (workdir / "best.yaml").read_text() + (workdir / "r.html").read_text()
    assert "s3cretpw" not in text and "***" in text


def test_the_jobs_suggestion_works_as_typed(tmp_path, space, name):
    """`--jobs 2` on SQLite names a journal URL; that URL, typed as printed, writes ./studies/NAME.log."""
    args = ["run", "--study", name, "--dataset", "synthetic", "--limit-train", 300, "--space", space(TINY), "--n-trials", 2, "--jobs", 2]
    refused = search(tmp_path, *args)
    assert refused.returncode == 1
    suggested = refused.stderr.split("use --storage ", 1)[1].split()[0]
    result = search(tmp_path, *args, "--storage", suggested)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "studies" / f"{name}.log").is_file()
    assert len(open_study(suggested.replace(":///", f":///{tmp_path}/"), name).trials) == 2


def test_this_run_counts_only_its_own_workers_trials(tmp_path, space, name):
    """Another machine's trials finishing in the same study during a --jobs run are not 'this run'."""
    url = f"journal:///{tmp_path}/shared.log"
    base = ["run", "--study", name, "--storage", url, "--dataset", "synthetic", "--limit-train", 1000, "--pruner", "none"]
    other = search(tmp_path, *base, "--space", space("hidden_units: 32\nepochs: 12\nbatch_size: 64\n"), "--n-trials", 6, popen={})
    wait_for(lambda: running_trial(url, name), timeout=120)
    mine = search(tmp_path, *base, "--jobs", 2, "--n-trials", 2)
    other.communicate(timeout=300)
    assert mine.returncode == 0 and other.returncode == 0, mine.stderr
    assert "this run:  2 trials" in mine.stdout


def _pairs(url, name):
    try:
        confirm = open_study(url, name + ":confirm")
    except KeyError:  # not made yet
        return None, []
    done = [(t.user_attrs["source_trial"], t.user_attrs["resample"]) for t in confirm.get_trials(deepcopy=False)
            if t.state == TrialState.COMPLETE]
    return confirm, done


def test_a_killed_confirmation_resumes_without_redoing_finished_retrains(tmp_path, space, name):
    url = f"journal:///{tmp_path}/c.log"
    base = ["--study", name, "--storage", url, "--heartbeat", 1]
    made = search(tmp_path, "run", *base, "--dataset", "synthetic", "--limit-train", 2000, "--space", space("hidden_units: 128\nepochs: {low: 20, high: 30}\nbatch_size: 64\n"),
                  "--n-trials", 3, "--pruner", "none")
    assert made.returncode == 0, made.stderr
    worker = search(tmp_path, "confirm", *base, "--confirm", "3,2", popen={})
    wait_for(lambda: len(_pairs(url, name)[1]) >= 1 and trials_in(url, name + ":confirm", TrialState.RUNNING), timeout=120)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    confirm, finished = _pairs(url, name)
    kept = {t.number: t.value for t in confirm.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE}
    from search import open_storage

    storage = open_storage(url, heartbeat=1)
    victim = trials_in(url, name + ":confirm", TrialState.RUNNING)[0]
    wait_for(lambda: victim._trial_id in storage._get_stale_trial_ids(confirm._study_id), timeout=30)  # its beat stopped

    result = search(tmp_path, "confirm", *base, "--confirm", "3,2")
    assert result.returncode == 0, result.stderr
    confirm, done = _pairs(url, name)
    assert len(done) == len(set(done))  # no retrain ran twice
    assert {t.number: t.value for t in confirm.get_trials(deepcopy=False) if t.number in kept} == kept
    assert not [t for t in confirm.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    summary = open_study(url, name).user_attrs["search:confirmation"]
    assert summary["ranking"][0]["n"] == 2


def test_jobs_share_a_confirmation(tmp_path, space, name):
    url = f"journal:///{tmp_path}/c.log"
    base = ["--study", name, "--storage", url]
    assert search(tmp_path, "run", *base, "--dataset", "synthetic", "--limit-train", 1000, "--space", space(TINY),
                  "--n-trials", 6, "--pruner", "none").returncode == 0
    result = search(tmp_path, "confirm", *base, "--confirm", "4,2", "--jobs", 2)
    assert result.returncode == 0, result.stderr
    workers = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("[w")}
    assert workers == {"[w0", "[w1"}
    _, done = _pairs(url, name)
    assert len(done) == len(set(done)) >= 4


def test_jobs_share_a_table_study(tmp_path, name):
    """A table is read once, in the parent, and reaches the workers through shared memory."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    pd.DataFrame(x, columns=list("abcde")).assign(y=np.where(x[:, 0] > 0, "up", "down")).to_csv(tmp_path / "t.csv", index=False)
    url = f"journal:///{tmp_path}/t.log"
    result = search(tmp_path, "run", "--study", name, "--storage", url, "--data", "t.csv", "--target", "y",
                    "--jobs", 2, "--n-trials", 4, "--max-epochs", 2)
    assert result.returncode == 0, result.stderr
    trials = open_study(url, name).get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == [0, 1, 2, 3] and all(t.state.is_finished() for t in trials)
