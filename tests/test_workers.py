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

import pytest
from _procs import LONG, TINY, open_study, read_until, running_trial, search, trials_in, wait_for
from conftest import storage_line
from optuna.trial import TrialState

KINDS = ("sqlite", "journal", "postgresql", "mysql", "redis")


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


@pytest.mark.parametrize("kind", KINDS)
def test_workers_share_a_study_exactly(tmp_path, space, name, own_storage, kind):
    """N workers x M trials: exactly N*M trials, numbered 0..N*M-1, none left RUNNING (SQLite's file included)."""
    url = f"sqlite:///{tmp_path}/s.db" if kind == "sqlite" else own_storage(kind)
    workers, per_worker = 2, 4
    result = search(
        tmp_path,
        "run",
        "--study",
        name,
        "--storage",
        url,
        "--dataset",
        "synthetic",
        "--limit-train",
        300,
        "--space",
        space(TINY),
        "--jobs",
        workers,
        "--n-trials",
        workers * per_worker,
    )
    assert result.returncode == 0, result.stderr
    trials = open_study(url, name).get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(workers * per_worker))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    # This process is worker 0 and starts at once; the other takes trials once it has started up.
    assert {line.split()[0] for line in result.stdout.splitlines() if line.startswith("[w")} <= {"[w0", "[w1"}
    assert f"this run:  {workers * per_worker} trials" in result.stdout
    # Both workers' calls: each trial asks, sets parameters, reports epochs and is told.
    assert storage_line(result.stdout)[0] >= workers * per_worker * 5, result.stdout


@pytest.mark.parametrize("kind", ["journal", "postgresql"])
def test_killed_worker_trial_is_failed_and_rerun_once(tmp_path, space, name, own_storage, kind):
    url = own_storage(kind)
    args = [
        "run",
        "--study",
        name,
        "--storage",
        url,
        "--dataset",
        "synthetic",
        "--limit-train",
        2000,
        "--space",
        space(LONG),
        "--heartbeat",
        1,
        "--pruner",
        "none",
    ]
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
    worker = search(
        tmp_path,
        "run",
        "--study",
        name,
        "--storage",
        url,
        "--dataset",
        "synthetic",
        "--limit-train",
        2000,
        "--space",
        space(LONG),
        "--n-trials",
        3,
        popen={},
    )
    wait_for(lambda: running_trial(url, name))
    worker.send_signal(sig)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 130
    assert "interrupted" in err and f"Continue with: search run --study {name}" in err and "Traceback" not in err
    trial, again = open_study(url, name).get_trials(deepcopy=False)
    assert trial.state == TrialState.FAIL
    # Its parameters wait to run first when the study goes on, and the line asks for the trials still owed.
    assert (
        again.state == TrialState.WAITING and again.params == trial.params and again.system_attrs["failed_trial"] == 0
    )
    line = err.split("Continue with: ", 1)[1].strip()
    assert line.endswith("--n-trials 3") and line.count("--n-trials") == 1
    if sig == signal.SIGINT:
        import shlex

        result = search(tmp_path, *shlex.split(line)[1:], "--space", space(TINY))
        assert result.returncode == 1 and "another search space" in result.stderr  # a flag that differs is refused
        result = search(tmp_path, *shlex.split(line)[1:])
        assert result.returncode == 0, result.stderr
        trials = open_study(url, name).get_trials(deepcopy=False)
        assert [t.state for t in trials] == [TrialState.FAIL] + [TrialState.COMPLETE] * 3
        assert trials[1].params == trial.params  # the interrupted trial's parameters ran first


def test_ctrl_c_reaches_every_worker(tmp_path, space, name):
    url = f"journal:///{tmp_path}/j.log"
    group = search(
        tmp_path,
        "run",
        "--study",
        name,
        "--storage",
        url,
        "--dataset",
        "synthetic",
        "--limit-train",
        2000,
        "--space",
        space(LONG),
        "--n-trials",
        4,
        "--jobs",
        2,
        popen={"start_new_session": True},
    )
    # Both workers under way: a worker that started late is caught in its first trial all the same.
    wait_for(
        lambda: (
            {t.user_attrs.get("run", {}).get("id") for t in trials_in(url, name, TrialState.RUNNING) if t.params}
            and len({t.number for t in trials_in(url, name, TrialState.RUNNING) if t.params}) == 2
        ),
        timeout=120,
    )
    running = {t.number for t in trials_in(url, name, TrialState.RUNNING)}
    os.killpg(group.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out, err = group.communicate(timeout=120)
    assert group.returncode == 130 and "Continue with" in err and "Traceback" not in err
    trials = open_study(url, name).get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert {t.number for t in trials if t.state == TrialState.FAIL} == running
    assert len([t for t in trials if t.state != TrialState.WAITING]) < 4  # the workers stopped short of their trials
    # Each interrupted trial's parameters wait to run first when the study goes on.
    waiting = [t.system_attrs.get("failed_trial") for t in trials if t.state == TrialState.WAITING]
    assert sorted(waiting) == sorted(running)
    # The line asks for the trials still owed: those the workers did not finish.
    finished = len([t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)])
    assert err.strip().endswith(f"--n-trials {4 - finished}"), err
    # One of the two may have ended between the wait and the signal: the line's count is the trials it cut short.
    cut = "the running trial is" if len(running) == 1 else f"the {len(running)} running trials are"
    assert f"{cut} marked failed" in err, err


def _spawned_worker(pid: int) -> int | None:
    """The pid of a worker process ``pid`` spawned (not multiprocessing's resource tracker)."""
    for child in open(f"/proc/{pid}/task/{pid}/children").read().split():
        command = open(f"/proc/{child}/cmdline", "rb").read().replace(b"\0", b" ")
        if b"spawn_main" in command:
            return int(child)
    return None


def test_a_killed_worker_s_trials_are_owed_in_the_line(tmp_path, space, name):
    """A worker process killed (the OOM killer, say) mid-trial: the run says so in one line and asks for what is owed."""
    url = f"sqlite:///{tmp_path}/s.db"
    run = search(
        tmp_path,
        "run",
        "--study",
        name,
        "--storage",
        url,
        "--dataset",
        "synthetic",
        "--limit-train",
        2000,
        "--space",
        space(LONG),
        "--n-trials",
        4,
        "--jobs",
        2,
        popen={},
    )
    # The spawned worker (not this process's child, its grandchild) under way on a trial of its own.
    wait_for(lambda: len({t.number for t in trials_in(url, name, TrialState.RUNNING) if t.params}) == 2, timeout=120)
    worker = wait_for(lambda: _spawned_worker(run.pid), timeout=30)
    os.kill(worker, signal.SIGKILL)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 1 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "1 of 2 workers were killed (SIGKILL)" in last
    finished = len(
        [
            t
            for t in open_study(url, name).get_trials(deepcopy=False)
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        ]
    )
    assert finished < 4 and f"the {finished} trial(s) this run finished are stored" in last
    assert last.endswith(f"--n-trials {4 - finished}"), last


def test_sigint_reaches_a_worker_that_inherited_it_ignored(tmp_path, space, name):
    """A background job of a non-interactive shell starts with SIGINT ignored; Ctrl-C must still stop it."""
    url = f"sqlite:///{tmp_path}/s.db"
    worker = search(
        tmp_path,
        "run",
        "--study",
        name,
        "--storage",
        url,
        "--dataset",
        "synthetic",
        "--limit-train",
        2000,
        "--space",
        space(LONG),
        "--n-trials",
        3,
        popen={"preexec_fn": lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)},
    )
    wait_for(lambda: running_trial(url, name), timeout=120)
    worker.send_signal(signal.SIGINT)
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 130 and "Traceback" not in err
    assert [t.state for t in open_study(url, name).get_trials(deepcopy=False)] == [TrialState.FAIL, TrialState.WAITING]


@pytest.mark.parametrize("after", [1, 2, 3])
def test_ctrl_c_between_trials_leaves_nothing_running(tmp_path, space, name, after):
    """Trials so short that a signal lands mostly in storage calls (ask, tell): still exit 130, one line."""
    url = f"sqlite:///{tmp_path}/s.db"
    worker = search(
        tmp_path,
        "run",
        "--study",
        name,
        "--storage",
        url,
        "--dataset",
        "synthetic",
        "--limit-train",
        64,
        "--space",
        space("hidden_units: 8\nepochs: 1\nbatch_size: 64\n"),
        "--n-trials",
        400,
        popen={},
    )
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
    worker = search(
        tmp_path,
        "run",
        "--study",
        name,
        "--storage",
        url,
        "--dataset",
        "synthetic",
        "--limit-train",
        1000,
        "--space",
        space("hidden_units: 64\nepochs: 30\nbatch_size: 64\n"),
        "--n-trials",
        6,  # work left after the first trial ends, however late a loaded machine's poll sees that
        "--heartbeat",
        1,
        "--pruner",
        "none",
        popen={},
    )
    wait_for(lambda: len(trials_in(url, name, TrialState.COMPLETE)) >= 1, timeout=120)
    # The outage lands mid-trial: a trial is running and has reported an epoch.
    victim = wait_for(
        lambda: next((t for t in trials_in(url, name, TrialState.RUNNING) if t.intermediate_values), None), timeout=120
    )
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


def pg_dump(database: str) -> list[str]:
    dump = subprocess.run(
        ["pg_dump", "-h", "127.0.0.1", "-U", "root", "--data-only", database],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        line for line in dump.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
    ]  # per-dump random tokens


def test_bad_input_leaves_a_postgresql_study_unchanged(tmp_path, space, name, own_storage, cli):
    """Compared on a database of the test's own: another client of the shared server changes nothing here."""
    url = own_storage("postgresql")
    database = url.rsplit("/", 1)[1]
    tiny = space(TINY)
    base = ["--study", name, "--storage", url, "--dataset", "synthetic", "--limit-train", "300", "--space", tiny]
    assert cli("run", *base, "--n-trials", "2")[0] == 0
    (tmp_path / "bad.yaml").write_text("lr: {low: 1, high: 0.1}\n")
    (tmp_path / "broken.yaml").write_text("params: [\n")
    before = pg_dump(database)
    cases = [
        ("run", *base, "--n-trials", "-3"),
        ("run", *base, "--sampler", "nope"),
        ("run", "--study", name, "--storage", url, "--dataset", "synthetic", "--space", tmp_path / "bad.yaml"),
        ("run", "--study", name, "--storage", url, "--dataset", "mnist", "--data-dir", tmp_path / "none"),
        ("run", "--study", name, "--storage", url, "--dataset", "synthetic", "--limit-train", "301", "--space", tiny),
        ("run", *base, "--jobs", "0"),
        ("run", *base, "--heartbeat", "-1"),
        (
            "run",
            "--study",
            name,
            "--storage",
            "postgresql://root:pw@127.0.0.1:5432/no_such_db",
            "--dataset",
            "synthetic",
        ),
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
    assert pg_dump(database) == before


def test_password_is_never_printed(tmp_path, space, name, own_storage, cli, workdir):
    """PostgreSQL here trusts local users, so a URL with a password works: it must never show."""
    url = own_storage("postgresql").replace("root@", "root:s3cretpw@")
    seen = []
    for args in (
        (
            "run",
            "--study",
            name,
            "--storage",
            url,
            "--dataset",
            "synthetic",
            "--limit-train",
            "300",
            "--space",
            space(TINY),
            "--n-trials",
            "2",
        ),
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


@pytest.mark.parametrize("form", ["userinfo", "query"])
def test_password_is_never_printed_in_any_form(tmp_path, space, name, own_storage, cli, workdir, form):
    """The --storage=URL form, and a password given as a query parameter."""
    plain = own_storage("postgresql")
    url = plain.replace("root@", "root:s3cretpw@") if form == "userinfo" else plain + "?password=s3cretpw"
    code, out, err = cli(
        "run",
        "--study",
        name,
        f"--storage={url}",
        "--dataset",
        "synthetic",
        "--limit-train",
        "300",
        "--space",
        space(TINY),
        "--n-trials",
        "1",
    )
    assert code == 0, err
    assert cli("export", "--study", name, "--storage", url, "--output", "best.yaml")[0] == 0
    assert cli("report", "--study", name, "--storage", url, "--output", "r.html")[0] == 0
    text = out + err + (workdir / "best.yaml").read_text() + (workdir / "r.html").read_text()
    assert "s3cretpw" not in text and "***" in text


def test_the_default_is_a_single_threaded_worker_per_core(tmp_path, space, name):
    """No --jobs: one worker process per core, one torch thread each, on the default SQLite file."""
    import torch.multiprocessing  # noqa: F401 - the same count of cores the tool sees

    from search.workers._processes import available_cores

    env = {k: v for k, v in os.environ.items() if k not in ("SEARCH_JOBS", "SEARCH_THREADS")}
    command = [
        sys.executable,
        "-m",
        "search",
        "run",
        "--study",
        name,
        "--dataset",
        "synthetic",
        "--limit-train",
        "300",
        "--space",
        space(TINY),
        "--n-trials",
        "4",
        "--confirm",
        "0",
    ]
    result = subprocess.run(command, cwd=tmp_path, env=env, text=True, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr
    trials = open_study(f"sqlite:///{tmp_path}/studies/studies.db", name).get_trials(deepcopy=False)
    runs = {(t.user_attrs["run"]["jobs"], t.user_attrs["run"]["threads"]) for t in trials}
    cores = available_cores()
    assert runs == {(min(cores, 4), max(1, cores // min(cores, 4)))}
    if cores >= 2:  # this process is worker 0; the other takes trials once it has started up
        assert "[w0" in {line.split()[0] for line in result.stdout.splitlines() if line.startswith("[w")}


def test_this_run_counts_only_its_own_workers_trials(tmp_path, space, name):
    """Another machine's trials finishing in the same study during a --jobs run are not 'this run'."""
    url = f"journal:///{tmp_path}/shared.log"
    base = [
        "run",
        "--study",
        name,
        "--storage",
        url,
        "--dataset",
        "synthetic",
        "--limit-train",
        1000,
        "--pruner",
        "none",
    ]
    other = search(
        tmp_path, *base, "--space", space("hidden_units: 32\nepochs: 12\nbatch_size: 64\n"), "--n-trials", 6, popen={}
    )
    wait_for(lambda: running_trial(url, name), timeout=120)
    mine = search(tmp_path, *base, "--jobs", 2, "--n-trials", 2)
    other.communicate(timeout=300)
    assert mine.returncode == 0 and other.returncode == 0, mine.stderr
    assert "this run:  2 trials" in mine.stdout


def test_jobs_share_a_table_study(tmp_path, name):
    """A table is read once, in the parent, and reaches the workers through shared memory."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    pd.DataFrame(x, columns=list("abcde")).assign(y=np.where(x[:, 0] > 0, "up", "down")).to_csv(
        tmp_path / "t.csv", index=False
    )
    url = f"journal:///{tmp_path}/t.log"
    result = search(
        tmp_path,
        "run",
        "--study",
        name,
        "--storage",
        url,
        "--data",
        "t.csv",
        "--target",
        "y",
        "--jobs",
        2,
        "--n-trials",
        4,
        "--max-epochs",
        2,
    )
    assert result.returncode == 0, result.stderr
    trials = open_study(url, name).get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == [0, 1, 2, 3] and all(t.state.is_finished() for t in trials)


MODELS = """import math
from torch import nn

def build(input_shape, num_outputs, hidden=16):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.ReLU(), nn.Linear(hidden, num_outputs))
"""
SCRIPT = """import search
from sklearn.datasets import load_wine
{model}
frame = load_wine(as_frame=True).frame
study = search.tune(frame, target="target", model=build, n_trials=4, jobs=2, confirm=False, study="s",
                    space={{"hidden": [8, 16], "epochs": 1}})
print("stored", len(study.optuna.trials), "finished", sum(t.state.is_finished() for t in study.optuna.trials))
"""


def _script(tmp_path, model: str):
    pytest.importorskip("sklearn")
    (tmp_path / "models.py").write_text(MODELS)
    (tmp_path / "example.py").write_text(SCRIPT.format(model=model))
    env = {k: v for k, v in os.environ.items() if k not in ("SEARCH_JOBS", "SEARCH_THREADS", "SEARCH_STORAGE")}
    return subprocess.run(
        [sys.executable, "example.py"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_plain_script_calling_tune_runs_with_worker_processes(tmp_path):
    """No `if __name__ == "__main__":` guard: the spawned workers must not run the script again."""
    result = _script(tmp_path, "from models import build")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "stored 4 finished 4" in result.stdout and "one worker process" not in result.stderr


def test_a_model_defined_in_the_script_runs_in_one_process_and_says_why(tmp_path):
    result = _script(tmp_path, MODELS)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "stored 4 finished 4" in result.stdout
    assert result.stderr.count("search: one worker process: the model build is defined in the script") == 1
