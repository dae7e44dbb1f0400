"""Every private Optuna name `search/_optuna/` relies on, checked against the installed Optuna.

An upgrade that moves one fails here, loudly, instead of on a user's cluster.
"""

from __future__ import annotations

import functools
import inspect

import optuna
import pytest
from optuna.trial import TrialState

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


@pytest.mark.parametrize("heartbeat", [5, None])
def test_a_new_trial_s_system_attributes_are_stored_with_it(tmp_path, heartbeat):
    """Made through Optuna's `_get_prepared_new_trial`, with the template's system attributes as plain rows (a
    worker's promise and token, Optuna's fixed parameters of a queued trial) and, where its worker beats, its first
    beat."""
    from optuna.storages import RDBStorage

    from search.storages._heartbeat import ASK_ATTR, PROMISE_ATTR

    assert "_get_prepared_new_trial" in inspect.getsource(RDBStorage._create_new_trial)
    storage = open_storage(f"sqlite:///{tmp_path}/n.db", heartbeat=heartbeat)
    study = optuna.create_study(storage=storage, study_name="n")
    study.ask()
    study.enqueue_trial({"x": 1.0})
    made, queued = (storage.get_trial(_optuna.trial_id(t)) for t in study.get_trials(deepcopy=False))
    now, beats = _optuna.rdb_heartbeats(storage, study._study_id, PROMISE_ATTR)
    beat = beats[_optuna.trial_id(made)][0]
    if heartbeat:  # and its first beat, in the same transaction
        assert made.system_attrs[PROMISE_ATTR] == 5 and len(made.system_attrs[ASK_ATTR]) == 32
        assert beat is not None and 0 <= (now - beat).total_seconds() < 60
    else:
        assert made.system_attrs == {} and beat is None
    assert queued.state == TrialState.WAITING and queued.system_attrs["fixed_params"] == {"x": 1.0}
    assert (made.number, queued.number) == (0, 1)


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


@functools.cache
def _optuna_private_names() -> tuple[frozenset[str], frozenset[str]]:
    """The private names Optuna's own source defines: its methods' (in classes), and every other."""
    import ast
    from pathlib import Path

    methods, others = set(), set()
    for path in Path(optuna.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                methods |= {f.name for f in node.body if isinstance(f, ast.FunctionDef) and _private(f.name)}
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _private(node.attr):
                others.add(node.attr)
    return frozenset(methods), frozenset(others | methods)  # cached: every test reads the same


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_optuna_name_outside_the_adapter():
    """Only search/_optuna/ imports a private Optuna module, reads an attribute only Optuna defines, or
    overrides one of Optuna's private methods: an Optuna release that moves one is a port of that module."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    methods, optuna_names = _optuna_private_names()
    ours = [p for package in ("search", "objectives") for p in (root / package).rglob("*.py")]
    trees = {p: ast.parse(p.read_text()) for p in ours if (root / "search" / "_optuna") not in p.parents}
    # Names our own code gives (a method, an attribute it sets) are ours wherever they are read.
    own = {
        n.name if isinstance(n, ast.FunctionDef) else n.attr
        for tree in trees.values()
        for n in ast.walk(tree)
        if (isinstance(n, ast.FunctionDef) and n.name not in methods)
        or (isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store))
    }
    found = []
    for path, tree in trees.items():
        where = path.relative_to(root)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                found += [f"{where}:{node.lineno} import {m}" for m in modules if _private_module(m)]
            elif isinstance(node, ast.ClassDef):
                found += [
                    f"{where}:{f.lineno} overrides {f.name}"
                    for f in node.body
                    if isinstance(f, ast.FunctionDef) and f.name in methods
                ]
            elif isinstance(node, ast.Attribute) and node.attr in optuna_names and node.attr not in own:
                found.append(f"{where}:{node.lineno} reads .{node.attr}")
    assert found == []


def _private_module(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "optuna" and any(_private(part) for part in parts)


def test_the_private_name_finder_finds_each_kind(tmp_path):
    methods, names = _optuna_private_names()
    assert {"_create_new_trial", "_get_stale_trial_ids", "_set_trial_param"} <= methods
    assert {"_trial_id", "_file_path", "_storage", "_backend"} <= names
    assert _private_module("optuna.storages._rdb.models") and not _private_module("optuna.storages")


def test_the_hooks_reach_the_private_methods_they_stand_for(tmp_path):
    """Optuna's cache creates trials through `_create_new_trial`, its heartbeat asks `_get_stale_trial_ids`;
    the adapter's public names are what those calls reach, on both storages."""
    from optuna.storages.journal import JournalFileBackend

    for name in ("_create_new_trial", "_get_stale_trial_ids", *_optuna.RDB_PRIVATE_WRITES):
        assert callable(getattr(optuna.storages.RDBStorage, name)), name
    assert _optuna.journal_file_path(JournalFileBackend(str(tmp_path / "j.log"))) == str(tmp_path / "j.log")
    storage = open_storage(f"sqlite:///{tmp_path}/h.db", heartbeat=5)
    made = []
    real = type(storage).create_frozen_trial

    def create_frozen_trial(self, study_id, template_trial=None):
        made.append(study_id)
        return real(self, study_id, template_trial)

    type(storage).create_frozen_trial = create_frozen_trial
    try:
        study = optuna.create_study(storage=storage, study_name="hooks")
        study.ask()
    finally:
        type(storage).create_frozen_trial = real
    assert made == [_optuna.study_id(study)]  # through Optuna's cache, into our hook
    assert storage._get_stale_trial_ids(_optuna.study_id(study)) == storage.stale_trial_ids(_optuna.study_id(study))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_a_batch_stores_what_optunas_own_writes_store_and_refuses_what_they_refuse(own_storage, tmp_path, kind):
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.exceptions import UpdateFinishedTrialError

    url = f"sqlite:///{tmp_path}/w.db" if kind == "sqlite" else own_storage(kind)
    storage = optuna.storages.RDBStorage(url)
    study = optuna.create_study(storage=storage, study_name="w")
    x, opt = FloatDistribution(0.0, 1.0), CategoricalDistribution(["sgd", "adam"])
    reports = {1: 0.5, 2: float("nan"), 3: float("inf"), 4: float("-inf")}

    own = study.ask()  # Optuna's own writes, a call each
    for name, (value, dist) in {"x": (0.25, x), "opt": (1, opt)}.items():
        storage.set_trial_param(_optuna.trial_id(own), name, value, dist)
    for step, value in reports.items():
        storage.set_trial_intermediate_value(_optuna.trial_id(own), step, value)
    storage.set_trial_user_attr(_optuna.trial_id(own), "config", {"a": [1, 2]})

    batched = study.ask()  # two batches: the second rewrites a report and an attribute
    _optuna.write_trial_attrs(
        storage, _optuna.trial_id(batched), {"config": {"a": 0}}, {1: 0.5}, {"x": (0.25, x), "opt": (1, opt)}
    )
    _optuna.write_trial_attrs(storage, _optuna.trial_id(batched), {"config": {"a": [1, 2]}}, {**reports, 1: 0.5})

    a, b = storage.get_trial(_optuna.trial_id(own)), storage.get_trial(_optuna.trial_id(batched))
    assert (a.params, a.distributions, a.user_attrs) == (b.params, b.distributions, b.user_attrs)
    assert str(a.intermediate_values) == str(b.intermediate_values)  # nan == nan, as text

    with pytest.raises(ValueError):  # the study's "x" is a float in [0, 1]
        _optuna.write_trial_attrs(
            storage, _optuna.trial_id(study.ask()), {}, {}, {"x": (0, CategoricalDistribution(["a"]))}
        )
    study.tell(batched, 1.0)
    with pytest.raises(UpdateFinishedTrialError):
        _optuna.write_trial_attrs(storage, _optuna.trial_id(batched), {"late": 1}, {})
    assert storage.get_trial(_optuna.trial_id(batched)).user_attrs == {"config": {"a": [1, 2]}}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_trials_read_as_rows_are_the_trials_optunas_orm_reads(own_storage, tmp_path, kind):
    from search._optuna import RDBStorageHooks

    url = f"sqlite:///{tmp_path}/r.db" if kind == "sqlite" else own_storage(kind)
    study = optuna.create_study(storage=url, study_name="r", directions=["maximize", "minimize"])

    def objective(trial: optuna.Trial):
        x = trial.suggest_float("x", 1e-3, 1.0, log=True)
        trial.suggest_categorical("opt", ["sgd", "adam"])
        trial.suggest_int("units", 8, 64, step=8)
        trial.set_user_attr("config", {"x": x, "list": [1, 2]})
        storage = _optuna.study_storage(study)
        storage.set_trial_system_attr(_optuna.trial_id(trial), "rung", trial.number)
        for step, value in enumerate([x, float("nan"), float("inf"), float("-inf")], 1):
            storage.set_trial_intermediate_value(_optuna.trial_id(trial), step, value)  # report() is one-objective
        if trial.number == 2:
            raise optuna.TrialPruned()
        return (float("inf") if trial.number == 1 else x), -x

    study.optimize(objective, n_trials=4)
    study.enqueue_trial({"x": 0.5})
    running = study.ask()
    running.suggest_float("x", 1e-3, 1.0, log=True)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study.optimize(lambda t: 1 / 0, n_trials=1, catch=(ZeroDivisionError,))  # the queued one fails

    orm, rows = optuna.storages.RDBStorage(url), RDBStorageHooks(url)
    sid = orm.get_study_id_from_name("r")
    for args in [(None, set(), -1), ((TrialState.COMPLETE,), set(), -1), (None, {2, 4}, 3), (None, set(), 2)]:
        a, b = orm._get_trials(sid, *args), rows._get_trials(sid, *args)
        assert [str(t) for t in a] == [str(t) for t in b]  # str: nan equals nan
        assert [t.number for t in a] != [] or args[1] is not None
    for trial in orm._get_trials(sid, None, set(), -1):
        assert str(rows.get_trial(trial._trial_id)) == str(trial)
    # Ids past what one IN takes (SQLite: 250,000 as Debian builds it; PostgreSQL: 65,535): Optuna's fallback.
    every = orm._get_trials(sid, None, set(), -1)
    first = every[0]._trial_id
    if kind != "mysql":  # MySQL has no such limit
        size = {"sqlite": 300_000, "postgresql": 70_000}[kind]
        many = set(range(first + 1, first + size))
        picked = rows._get_trials(sid, None, many, first + size + 1)
        assert [str(t) for t in picked] == [str(t) for t in every[1:]]
    with pytest.raises(KeyError):
        rows.get_trial(10_000)
    with pytest.raises(KeyError):
        rows._get_trials(10_000, None, set(), -1)


def test_the_cache_kept_in_order_answers_as_optunas_own_cache(tmp_path):
    """Two workers' trials, created, run and finished out of order; after each change the cache that keeps its
    trials in order hands back what Optuna's own (sorting at every read) does, in every state filter."""
    import random

    url = f"sqlite:///{tmp_path}/o.db"
    mine = optuna.create_study(storage=open_storage(url), study_name="o")
    _optuna.keep_trials_in_order(_optuna.study_storage(mine))
    other = optuna.load_study(storage=open_storage(url), study_name="o")  # another worker
    rng = random.Random(1)
    running: list = []
    for step in range(120):
        study = rng.choice([mine, other])
        if running and rng.random() < 0.5:
            trial = running.pop(rng.randrange(len(running)))
            study.tell(trial.number, rng.random())
        elif rng.random() < 0.2:
            study.enqueue_trial({"x": 0.5})
        else:
            running.append(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}))
        plain = optuna.load_study(storage=url, study_name="o")
        for states in (None, (TrialState.COMPLETE,), (TrialState.RUNNING, TrialState.WAITING)):
            got = mine._storage.get_all_trials(mine._study_id, deepcopy=False, states=states)
            want = plain._storage.get_all_trials(plain._study_id, deepcopy=False, states=states)
            assert [(t.number, t.state, t.value) for t in got] == [(t.number, t.state, t.value) for t in want], step
    assert mine._storage._search_in_order.ordered[mine._study_id] is not None  # kept, not re-sorted each time


def test_shared_parameters_are_suggested_and_a_queued_trials_own_values_win():
    """`share_params` rests on Optuna reading a trial's fixed parameters once, at ask, into ``_fixed_params``."""
    from search._optuna import share_params

    study = optuna.create_study()
    study.enqueue_trial({"a": 3})
    queued, fresh = study.ask(), study.ask()
    for trial in (queued, fresh):
        share_params(trial, {"a": 7, "b": 0.5})
        trial.suggest_int("a", 0, 10)
        trial.suggest_float("b", 0.0, 1.0)
    assert queued.params == {"a": 3, "b": 0.5} and fresh.params == {"a": 7, "b": 0.5}
