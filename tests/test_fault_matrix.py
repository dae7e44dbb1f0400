"""The fault matrix: a write fault at each storage call of a trial's life, and at each file the tool writes.

In the style of SQLite's own I/O error tests: the faults come from a wrapper around Optuna's
storage methods (or the file writer), injected once at a chosen call, and each outcome is
asserted: the study reads in plain Optuna, no trial is lost or counted twice, and the tool
ends with one line (exit 0 when the storage came back, 1 when it cannot be written).

- ``lost``: the call fails before it reaches the storage (a dropped link); the storage answers
  again a moment later.
- ``answer``: the call reaches the storage and its answer is lost (a read timeout after the
  commit).
- ``full``: the storage cannot be written (a full disk, a Redis at its maxmemory).
"""

from __future__ import annotations

import errno
import shlex

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

import search.storages._buffer
import search.study._reconnect
from search.storages._heartbeat import BEAT_ATTR

pytestmark = pytest.mark.slow

KINDS = ["sqlite", "journal", "postgresql", "mysql", "redis"]
CALLS = ["create", "params", "report", "state", "heartbeat"]
N_TRIALS = 3
SPACE = "hidden_units: 8\nepochs: 2\nbatch_size: 64\n"  # lr, optimizer and momentum sampled; two reports a trial

# Optuna's method that makes each call, per storage family.
_RDB_METHODS = {
    "create": "_create_new_trial",
    "params": "_set_trial_param",
    "report": "set_trial_intermediate_value",
    "state": "set_trial_state_values",
    "heartbeat": "record_heartbeat",
}
# What the trial write buffer (search/storages/_buffer.py) batches: the position, in `write_trial_attrs`'s and
# `write_journal_logs`' arguments (storage, trial_id, user_attrs, intermediate, params) after the storage, of
# what makes a batch one of these calls.
_BATCHED = {"params": 3, "report": 2}
_JOURNAL_METHODS = {
    "create": "create_new_trial",
    "params": "set_trial_param",
    "report": "set_trial_intermediate_value",
    "state": "set_trial_state_values",
    "heartbeat": "set_trial_system_attr",
}


def _lost(kind: str) -> Exception:
    if kind == "redis":
        import redis.exceptions

        return redis.exceptions.ConnectionError("Connection reset by peer")
    if kind == "journal":
        return OSError(errno.EIO, "Input/output error")  # a journal on a network file system that blinked
    return sqlalchemy.exc.OperationalError("UPDATE trials", {}, Exception("server closed the connection unexpectedly"))


def _full(kind: str) -> Exception:
    if kind == "redis":
        import redis.exceptions

        return redis.exceptions.ResponseError("OOM command not allowed when used memory > 'maxmemory'.")
    if kind == "journal":
        return OSError(errno.ENOSPC, "No space left on device")
    said = {
        "sqlite": "database or disk is full",
        "mysql": "(1114, \"The table 'trials' is full\")",
        "postgresql": 'could not extend file "base/16384/2619": No space left on device',
    }[kind]
    return sqlalchemy.exc.OperationalError("INSERT INTO trials", {}, Exception(said))


class Fault:
    """Wraps one storage method; its ``at``-th call (from 1) fails as ``mode`` says, once."""

    def __init__(self, monkeypatch, kind: str, call: str, mode: str, at: int):
        journal = kind in ("journal", "redis")
        owner = optuna.storages.JournalStorage if journal else optuna.storages.RDBStorage
        name = (_JOURNAL_METHODS if journal else _RDB_METHODS)[call]
        if call in _BATCHED:  # they go out in the trial write buffer's batches: a transaction, or an append
            owner, name = search.storages._buffer, "write_journal_logs" if journal else "write_trial_attrs"
        self.real, self.kind, self.call, self.mode, self.at = getattr(owner, name), kind, call, mode, at
        self.calls, self.fired = 0, False
        monkeypatch.setattr(owner, name, self._wrapped())

    def _counts(self, args) -> bool:
        # A journal's beat is a system attribute of its own key; other system attributes are not beats.
        if self.call == "heartbeat" and self.kind in ("journal", "redis"):
            return args[1] == BEAT_ATTR
        if self.call in _BATCHED:  # a batch that carries such a write
            return bool(args[_BATCHED[self.call]])
        return True

    def _wrapped(self):
        def call(storage, *args, **kwargs):
            if not self.fired and self._counts(args):
                self.calls += 1
                if self.calls == self.at:
                    self.fired = True
                    if self.mode == "answer":
                        self.real(storage, *args, **kwargs)
                        raise _lost(self.kind)
                    raise _full(self.kind) if self.mode == "full" else _lost(self.kind)
            return self.real(storage, *args, **kwargs)

        return call


@pytest.fixture
def url_of(workdir, own_storage):
    def make(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{workdir}/s.db"
        if kind == "journal":
            return f"journal:///{workdir}/j.log"
        return own_storage(kind)

    return make


def _plain_optuna(url: str, kind: str) -> list[optuna.trial.FrozenTrial]:
    """The study as plain Optuna reads it, through Optuna's own storage classes."""
    if kind == "journal":
        from optuna.storages.journal import JournalFileBackend

        storage = optuna.storages.JournalStorage(JournalFileBackend(url.removeprefix("journal:///")))
    elif kind == "redis":
        from optuna.storages.journal import JournalRedisBackend

        base, prefix = url.split("?prefix=", 1)
        storage = optuna.storages.JournalStorage(JournalRedisBackend(base, prefix=prefix))
    else:
        storage = optuna.storages.RDBStorage(url)
    return optuna.load_study(study_name="m", storage=storage).get_trials(deepcopy=False)


def _finished(trials) -> list[optuna.trial.FrozenTrial]:
    return [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def _nothing_lost(trials) -> None:
    """Every failed trial that had parameters was run again, and that run finished."""
    for failed in (t for t in trials if t.state == TrialState.FAIL and t.params):
        again = [t for t in trials if t.system_attrs.get("failed_trial") == failed.number]
        assert again and again[0].state in (TrialState.COMPLETE, TrialState.PRUNED), (failed.number, again)
        assert failed.params.items() <= again[0].params.items()  # the parameters it had drawn, and the rest


def _one_line(err: str) -> str:
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("search: error")]
    assert len(errors) <= 1, err
    return errors[0] if errors else ""


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("mode", ["lost", "answer", "full"])
def test_a_storage_fault_at_each_call_of_a_trial(cli, workdir, url_of, monkeypatch, kind, call, mode):
    if kind == "journal" and mode == "answer":
        pytest.skip("a journal file's append has no answer to lose: it is written or it fails")
    monkeypatch.setattr(search.study._reconnect, "_POLL_SECONDS", 0.01)
    url = url_of(kind)
    (workdir / "space.yaml").write_text(SPACE)
    args = [
        "run",
        "--study",
        "m",
        "--storage",
        url,
        "--dataset",
        "synthetic",
        "--limit-train",
        64,
        "--space",
        "space.yaml",
        "--n-trials",
        N_TRIALS,
        "--heartbeat",
        1,
        "--pruner",
        "none",
    ]
    fault = Fault(monkeypatch, kind, call, mode, at=2)  # the second such call: trial 0's, or a call into trial 1
    code, out, err = cli(*args)
    assert fault.fired, f"no {call} call {fault.at}"
    line = _one_line(err)
    trials = _plain_optuna(url, kind)
    # A journal file's I/O error is not waited out (a file has no connection to come back): it stops, as a full disk.
    stops = mode == "full" or (kind == "journal" and mode == "lost")
    if stops and call != "heartbeat":  # a beat that fails is one line, and the trial goes on
        assert code == 1 and any(w in line for w in ("no space left on device", "out of memory", "input/output")), err
        done = len(_finished(trials))
        assert f"the {done} trial(s) this run finished are stored" in line and done < N_TRIALS
        assert len([t for t in trials if t.state == TrialState.RUNNING]) <= 1  # the cut one, for the stale rule
        # Room again (the fault fired once): the printed line completes what was asked.
        code, out, err = cli(*shlex.split(line.split("continue with: ", 1)[1])[1:])
        assert code == 0, err
        trials = _plain_optuna(url, kind)
    else:
        assert code == 0 and line == "", err
        assert not [t for t in trials if t.state == TrialState.RUNNING]  # none stranded without a worker
    _nothing_lost(trials)
    assert len(_finished(trials)) == N_TRIALS  # nothing lost, nothing twice
    assert not [t for t in trials if t.state == TrialState.WAITING]  # every queued re-run ran


OUTPUTS = {
    "export": (["export", "--study", "m", "--output", "best.yaml"], "best.yaml", 1),
    "report": (["report", "--study", "m", "--output", "report.html"], "report.html", 1),
    "trials": (["trials", "--study", "m", "--format", "csv", "--output", "trials.csv"], "trials.csv", 1),
    "model weights": (["train", "--config", "best.yaml", "--save-model", "m.pt"], "m.pt", 1),
    "model record": (["train", "--config", "best.yaml", "--save-model", "m.pt"], "m.json", 2),
    "predictions": (["predict", "--model", "m.pt", "--data", "wine.csv", "--output", "p.csv"], "p.csv", 1),
}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A table study, its exported configuration and a saved model, made once for the output faults."""
    import os

    from sklearn.datasets import load_wine

    from search import main

    folder = tmp_path_factory.mktemp("outputs")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        load_wine(as_frame=True).frame.to_csv("wine.csv", index=False)
        for argv in (
            [
                "run",
                "--study",
                "m",
                "--data",
                "wine.csv",
                "--target",
                "target",
                "--n-trials",
                "2",
                "--max-epochs",
                "2",
                "--confirm",
                "0",
            ],
            ["export", "--study", "m", "--output", "best.yaml"],
            ["train", "--config", "best.yaml", "--save-model", "m.pt"],
            ["predict", "--model", "m.pt", "--data", "wine.csv", "--output", "p.csv"],
            ["report", "--study", "m", "--output", "report.html"],
            ["trials", "--study", "m", "--format", "csv", "--output", "trials.csv"],
        ):
            assert main(argv) == 0, argv
    finally:
        os.chdir(cwd)
    return folder


@pytest.mark.parametrize("output", list(OUTPUTS))
def test_a_full_disk_at_each_file_the_tool_writes_leaves_the_old_file(made, cli, monkeypatch, output):
    import os

    import objectives._files

    monkeypatch.chdir(made)
    argv, name, at = OUTPUTS[output]
    before = {p: p.read_bytes() for p in made.iterdir() if p.is_file()}
    real, calls = os.fsync, []

    def full(fd):
        calls.append(fd)
        if len(calls) == at:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(objectives._files.os, "fsync", full)
    code, out, err = cli(*argv)
    assert len(calls) >= at, f"{name} was never written"
    assert code == 1 and "No space left on device" in _one_line(err), err
    after = {p: p.read_bytes() for p in made.iterdir() if p.is_file()}
    assert after == before  # the old files, whole; no temporary left beside them
