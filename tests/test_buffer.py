"""The trial write buffer (search/storages/_buffer.py) and the pruner's snapshot (search/study/_pruners.py):
fewer storage round trips a trial, the same stored trials and the same decisions."""

from __future__ import annotations

import math
import time

import optuna
import pytest
from optuna.trial import TrialState

from search._optuna import study_storage, trial_id
from search.storages import open_storage
from search.storages._buffer import TrialWriteBuffer, attach, forget
from search.storages._clock import attach as attach_clock
from search.study._pruners import SnapshotPruner

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _url(kind: str, tmp_path) -> str:
    return f"sqlite:///{tmp_path}/b.db" if kind == "sqlite" else f"journal:///{tmp_path}/b.log"


def _study(url: str, **kwargs) -> optuna.Study:
    return optuna.create_study(study_name="b", storage=open_storage(url), **kwargs)


def _fresh(url: str) -> optuna.trial.FrozenTrial:
    """The study's last trial as another process reads it: through a storage of its own."""
    return optuna.load_study(study_name="b", storage=open_storage(url)).get_trials(deepcopy=False)[-1]


def _objective(url: str, seen: list, steps: int = 4, end=None):
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.suggest_categorical("opt", ["sgd", "adam"])
        trial.set_user_attr("config", {"x": x})
        for step in range(1, steps + 1):
            trial.report(x + step, step)
            seen.append(_fresh(url))  # what another worker sees after each report
        trial.set_user_attr("seconds", 1.5)
        if end is not None:
            raise end
        return x

    return objective


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_trial_is_stored_whole_and_its_first_epoch_at_once(tmp_path, kind):
    url = _url(kind, tmp_path)
    study = _study(url)
    TrialWriteBuffer(study_storage(study), flush_seconds=math.inf)
    seen: list = []
    study.optimize(_objective(url, seen), n_trials=1)
    (trial,) = study.get_trials()
    stored = _fresh(url)
    assert stored.state == TrialState.COMPLETE and stored.value == trial.params["x"]
    assert stored.intermediate_values == {s: trial.params["x"] + s for s in range(1, 5)}
    assert stored.user_attrs == {"config": {"x": trial.params["x"]}, "seconds": 1.5}
    assert set(stored.params) == {"x", "opt"}
    # The first report goes out at once, with what was set before it; later ones wait (here for ever).
    assert [sorted(s.intermediate_values) for s in seen] == [[1]] * 4
    assert seen[0].user_attrs == {"config": {"x": trial.params["x"]}} and set(seen[0].params) == {"x", "opt"}


def test_reports_go_out_again_once_the_flush_interval_passed(tmp_path):
    url = _url("sqlite", tmp_path)
    study = _study(url)
    TrialWriteBuffer(study_storage(study), flush_seconds=0.0)
    seen: list = []
    study.optimize(_objective(url, seen), n_trials=1)
    assert [sorted(s.intermediate_values) for s in seen] == [[1], [1, 2], [1, 2, 3], [1, 2, 3, 4]]


def test_one_transaction_carries_the_parameters_attributes_and_reports(tmp_path, monkeypatch):
    from search.storages import _buffer

    url = _url("sqlite", tmp_path)
    study = _study(url)
    clock = attach_clock(study_storage(study))
    batches = []
    real = _buffer.write_trial_attrs
    monkeypatch.setattr(_buffer, "write_trial_attrs", lambda *a, **k: (batches.append(a[2:5]), real(*a, **k))[1])
    TrialWriteBuffer(study_storage(study), clock, flush_seconds=math.inf)
    started = time.perf_counter()
    study.optimize(_objective(url, [], steps=5), n_trials=1)
    # The first report with the parameters and the attribute set before it; the rest before the end.
    assert [(sorted(u), sorted(i), sorted(p or {})) for u, i, p in batches] == [
        (["config"], [1], ["opt", "x"]),
        (["seconds"], [2, 3, 4, 5], []),
    ]
    assert clock.calls <= 9, clock.calls  # the three batches counted as calls, with the trial's own
    assert 0 < clock.seconds < time.perf_counter() - started  # and their time, within the run's


def test_the_worker_s_own_reads_of_the_study_see_what_it_holds(tmp_path):
    url = _url("sqlite", tmp_path)
    study = _study(url)
    TrialWriteBuffer(study_storage(study), flush_seconds=math.inf)
    seen = []

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        trial.report(0.1, 1)
        trial.report(0.2, 2)  # held: only the first report went out
        seen.append((trial.study.get_trials(deepcopy=False)[-1], _fresh(url)))
        return 0.0

    study.optimize(objective, n_trials=1)
    own, other = seen[0]
    assert own.intermediate_values == {1: 0.1, 2: 0.2} and other.intermediate_values == {1: 0.1}


def test_another_worker_s_trial_is_neither_held_nor_blocked(tmp_path):
    url = _url("sqlite", tmp_path)
    study = _study(url)
    buffer = TrialWriteBuffer(study_storage(study), flush_seconds=math.inf)
    others = optuna.load_study(study_name="b", storage=open_storage(url))
    theirs = trial_id(others.ask())  # running in another process
    storage = study_storage(study)
    assert storage.set_trial_state_values(theirs, TrialState.RUNNING) is False  # not taken: not this worker's
    assert theirs not in buffer.pending
    storage.set_trial_user_attr(theirs, "note", 1)  # written at once, as Optuna would
    assert _fresh(url).user_attrs == {"note": 1}
    storage.set_trial_state_values(theirs, TrialState.FAIL)  # a stale trial failed by this worker
    assert _fresh(url).state == TrialState.FAIL


def test_a_trial_another_worker_failed_is_forgotten_and_read_as_stored(tmp_path):
    """Its worker holds a report the study refuses now: forgotten, the worker reads the trial as stored."""
    url = _url("sqlite", tmp_path)
    study = _study(url)
    buffer = attach(study_storage(study))  # as a worker puts it on (`forget` finds it there)
    buffer.flush_seconds = math.inf
    trial = study.ask()
    trial.report(0.1, 1)
    trial.report(0.2, 2)  # held
    others = optuna.load_study(study_name="b", storage=open_storage(url))
    study_storage(others).set_trial_state_values(trial_id(trial), TrialState.FAIL)  # its stale check
    assert study.get_trials(deepcopy=False)[-1].intermediate_values == {1: 0.1, 2: 0.2}
    forget(study_storage(study), trial_id(trial))
    assert trial_id(trial) not in buffer.pending
    assert study.get_trials(deepcopy=False)[-1].intermediate_values == {1: 0.1}


def test_a_pruned_trial_takes_its_last_buffered_report(tmp_path):
    url = _url("sqlite", tmp_path)
    study = _study(url)
    TrialWriteBuffer(study_storage(study), flush_seconds=math.inf)
    study.optimize(_objective(url, [], steps=3, end=optuna.TrialPruned()), n_trials=1)
    stored = _fresh(url)
    assert stored.state == TrialState.PRUNED and stored.value == stored.params["x"] + 3
    assert stored.user_attrs["seconds"] == 1.5 and sorted(stored.intermediate_values) == [1, 2, 3]


def test_a_failed_trial_keeps_what_it_recorded(tmp_path):
    url = _url("sqlite", tmp_path)
    study = _study(url)
    TrialWriteBuffer(study_storage(study), flush_seconds=math.inf)
    study.optimize(_objective(url, [], steps=2, end=RuntimeError("out of memory")), n_trials=1, catch=(RuntimeError,))
    stored = _fresh(url)
    assert stored.state == TrialState.FAIL and stored.user_attrs["seconds"] == 1.5
    assert sorted(stored.intermediate_values) == [1, 2]


def test_a_queued_trial_is_buffered_too_and_others_writes_are_not(tmp_path):
    url = _url("sqlite", tmp_path)
    study = _study(url)
    study.enqueue_trial({"x": 0.5, "opt": "sgd"})
    buffer = TrialWriteBuffer(study_storage(study), flush_seconds=math.inf)
    seen: list = []
    study.optimize(_objective(url, seen, steps=2), n_trials=1)
    assert _fresh(url).params == {"x": 0.5, "opt": "sgd"} and [sorted(s.intermediate_values) for s in seen] == [[1]] * 2
    assert not buffer.pending  # a finished trial leaves the buffer

    def system_attr(trial: optuna.Trial) -> float:
        study_storage(study).set_trial_system_attr(trial_id(trial), "rung", 1)  # a pruner's rung: never held
        seen.append(_fresh(url))
        return 0.0

    study.optimize(system_attr, n_trials=1)
    assert seen[-1].system_attrs["rung"] == 1


def test_a_trial_queued_by_another_worker_is_taken_from_one_read_of_the_queue(tmp_path, monkeypatch):
    url = _url("sqlite", tmp_path)
    study = _study(url)
    TrialWriteBuffer(study_storage(study), flush_seconds=math.inf)
    study.optimize(_objective(url, [], steps=1), n_trials=2)  # this worker's cache holds the study
    optuna.load_study(study_name="b", storage=open_storage(url)).enqueue_trial({"x": 0.125, "opt": "adam"})
    backend = study_storage(study)._backend
    reads = []
    real = type(backend)._get_trials
    monkeypatch.setattr(
        backend, "_get_trials", lambda *a, **k: (reads.append(k.get("states", a[1:2])), real(backend, *a, **k))[1]
    )
    trial = study.ask()
    assert trial.suggest_float("x", 0.0, 1.0) == 0.125
    assert reads in (
        [(TrialState.WAITING,)],
        [((TrialState.WAITING,),)],
    )  # the queue alone: not every unfinished trial again, as Optuna's cache


def _completed(study: optuna.Study, values: list[list[float]]) -> None:
    for curve in values:
        study.add_trial(
            optuna.trial.create_trial(
                value=curve[-1], intermediate_values=dict(enumerate(curve, 1)), params={}, distributions={}
            )
        )


def _counted_reads(study: optuna.Study) -> list:
    """A list that gains an entry at each read of the whole study from its storage from now on."""
    storage = study_storage(study)
    reads: list = []
    real = storage.get_all_trials

    def counted(*args, **kwargs):
        reads.append(kwargs.get("states"))
        return real(*args, **kwargs)

    storage.get_all_trials = counted  # type: ignore[method-assign]
    return reads


def test_the_snapshot_pruner_decides_as_the_median_pruner_with_one_read_a_trial(tmp_path):
    study = optuna.create_study(direction="maximize")
    _completed(study, [[0.1 * k + 0.05 * s for s in range(5)] for k in range(8)])
    plain = optuna.pruners.MedianPruner(n_startup_trials=5)
    snap = SnapshotPruner(optuna.pruners.MedianPruner(n_startup_trials=5), seconds=math.inf)
    reads = _counted_reads(study)
    plain_reads = snap_reads = 0
    decisions = []
    for number, level in enumerate([0.0, 0.3, 0.45, 0.9]):
        study.ask()  # a new trial: Optuna's cache of the study for it starts empty
        curve = [level + 0.05 * s for s in range(5)]
        trial = optuna.trial.create_trial(
            state=TrialState.RUNNING, intermediate_values=dict(enumerate(curve, 1)), params={}, distributions={}
        )
        trial.number = 100 + number
        for step in range(1, 6):
            trial.intermediate_values = {s: curve[s - 1] for s in range(1, step + 1)}
            before = len(reads)
            expected = plain.prune(study, trial)
            plain_reads, before = plain_reads + len(reads) - before, len(reads)
            assert snap.prune(study, trial) == expected, (level, step)
            snap_reads += len(reads) - before
            decisions.append(expected)
    assert True in decisions and False in decisions  # both decisions were compared
    assert plain_reads >= 4 * 5 and snap_reads == 4  # the plain pruner read each epoch; the snapshot once a trial


def _storage_reads(pruner: optuna.pruners.BasePruner) -> int:
    """The reads of the whole study a 6-trial TPE study makes with ``pruner``, 3 epochs a trial."""
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=2), pruner=pruner)
    reads = _counted_reads(study)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(1, 4):
            trial.report(x * step, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return x

    study.optimize(objective, n_trials=6)
    return len(reads)


def test_the_snapshot_pruner_adds_no_read_to_the_sampler_s():
    median = lambda: optuna.pruners.MedianPruner(n_startup_trials=2)  # noqa: E731
    reads = {
        "snapshot": _storage_reads(SnapshotPruner(median())),
        "none": _storage_reads(optuna.pruners.NopPruner()),
        "median": _storage_reads(median()),
    }
    assert reads["snapshot"] == reads["none"] < reads["median"], reads


def test_the_snapshot_is_read_again_when_it_is_older_than_its_interval():
    study = optuna.create_study()
    snap = SnapshotPruner(optuna.pruners.MedianPruner(n_startup_trials=1), seconds=0.0)
    trial = optuna.trial.create_trial(
        state=TrialState.RUNNING, intermediate_values={1: 1.0}, params={}, distributions={}
    )
    study.ask()
    assert snap.complete(study, trial) == []
    _completed(study, [[0.5]])
    assert len(snap.complete(study, trial)) == 1  # interval 0: every read is fresh
    slow = SnapshotPruner(optuna.pruners.MedianPruner(), seconds=math.inf)
    assert len(slow.complete(study, trial)) == 0  # a trial's first: the study as read for this trial's ask
    slow = SnapshotPruner(optuna.pruners.MedianPruner(), seconds=math.inf)
    study.ask()
    assert len(slow.complete(study, trial)) == 1
    _completed(study, [[0.7]])
    assert len(slow.complete(study, trial)) == 1  # the same trial: the snapshot stands
    study.ask()
    trial.number += 1
    assert len(slow.complete(study, trial)) == 2  # the next trial reads again


def test_other_workers_constant_liar_sees_a_running_trial_s_point_before_its_first_report(tmp_path):
    import json

    from search.study._samplers import make_sampler

    url = _url("sqlite", tmp_path)
    study = _study(url, sampler=make_sampler("tpe", 0))
    TrialWriteBuffer(study_storage(study), flush_seconds=math.inf)
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=12)  # past TPE's random start
    seen = []

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        seen.append((x, _fresh(url)))  # sampled, nothing reported yet
        return x

    study.optimize(objective, n_trials=1)
    x, other = seen[0]
    assert other.state == TrialState.RUNNING and other.params == {}  # its parameters are held...
    shared = json.loads(other.system_attrs["tpe:relative_params:0"])
    assert shared == {"x": x}  # ...and TPE's own record of its point, which the constant liar reads, is not


def test_a_journal_takes_each_batch_in_one_append(tmp_path):
    url = _url("journal", tmp_path)
    study = _study(url)
    TrialWriteBuffer(study_storage(study), flush_seconds=math.inf)
    backend = study_storage(study)._backend
    appends: list[int] = []
    real = backend.append_logs
    backend.append_logs = lambda logs: (appends.append(len(logs)), real(logs))[1]
    study.optimize(_objective(url, [], steps=5), n_trials=1)
    # The trial's creation, its first report with its parameters and attribute, the rest, its end.
    assert appends == [1, 4, 5, 1], appends
    assert _fresh(url).intermediate_values == {s: study.trials[0].params["x"] + s for s in range(1, 6)}
