"""Every use of Optuna's private API, in one place.

Optuna keeps no promise about these names. `tests/test_optuna_private.py` checks each
against the installed Optuna, so an upgrade that moves one fails there, loudly, rather
than mid-study on a user's cluster. pyproject.toml pins the Optuna range the tests cover.
"""

from __future__ import annotations

import copy
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat  # the interface heartbeats plug into
from optuna.trial import FrozenTrial

__all__ = [
    "RDB_PRIVATE_WRITES",
    "BaseHeartbeat",
    "GrpcStorageHooks",
    "JournalStorageHooks",
    "RDBStorageHooks",
    "StudyView",
    "grpc_deadline",
    "grpc_proxy_server",
    "journal_file_path",
    "rdb_heartbeats",
    "redis_ping",
    "redis_time",
    "storage_backend",
    "study_id",
    "study_storage",
    "take_waiting",
    "trial_id",
    "journal_lock",
    "write_journal_logs",
    "write_trial_attrs",
]


# The private methods through which Optuna's cache (`_CachedStorage`) writes to an RDB storage: a
# wrapper of the storage's writes must wrap these as well as the public ones.
RDB_PRIVATE_WRITES = ("_create_new_trial", "_set_trial_param")


class RDBStorageHooks(RDBStorage):
    """Optuna's RDB storage with the two private methods this project extends, under public names.

    Optuna's cache creates every trial through ``_create_new_trial`` (not ``create_new_trial``),
    and ``fail_stale_trials`` asks ``_get_stale_trial_ids``: a subclass overrides
    `create_frozen_trial` and `stale_trial_ids`, and a newer Optuna that renames either breaks
    this module's contract test, not a study.
    """

    def _create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> FrozenTrial:
        return self.create_frozen_trial(study_id, template_trial)

    def create_frozen_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> FrozenTrial:
        """Create a trial from ``template_trial`` (None: a new RUNNING one) and return it frozen."""
        return super()._create_new_trial(study_id, template_trial)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return self.stale_trial_ids(study_id)

    def stale_trial_ids(self, study_id: int) -> list[int]:
        """The ids of the study's RUNNING trials whose heartbeat stopped."""
        return super()._get_stale_trial_ids(study_id)


class JournalStorageHooks(JournalStorage, BaseHeartbeat):
    """Optuna's journal storage as a heartbeat storage (Optuna gives it none): a subclass says which
    trials are stale in `stale_trial_ids`, the public name of `BaseHeartbeat`'s private method."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return self.stale_trial_ids(study_id)

    def stale_trial_ids(self, study_id: int) -> list[int]:
        raise NotImplementedError


class GrpcStorageHooks(optuna.storages.GrpcStorageProxy, BaseHeartbeat):
    """Optuna's gRPC proxy client as a heartbeat storage (Optuna gives it none): a subclass says which trials
    are stale in `stale_trial_ids`, the public name of `BaseHeartbeat`'s private method."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return self.stale_trial_ids(study_id)

    def stale_trial_ids(self, study_id: int) -> list[int]:
        raise NotImplementedError


def journal_file_path(backend: Any) -> str | None:
    """The file a `JournalFileBackend` appends to; None for another backend (Redis)."""
    path = getattr(backend, "_file_path", None)
    return None if path is None else str(path)


def study_storage(study: optuna.Study) -> BaseStorage:
    """The storage a study was loaded from (Optuna has no public accessor)."""
    return study._storage


def only_queued_trials(study: optuna.Study, refusal: Any) -> None:
    """Make ``study.ask()`` raise ``refusal()`` instead of creating a trial of its own.

    Optuna's ``ask`` pops a WAITING trial (atomically: one worker gets each) and, when none is
    left, calls ``create_new_trial(study_id)`` without a template. An enqueued trial (a retry, a
    trial of the study's budget) comes with one and is still created.
    """
    storage, sid = study_storage(study), study_id(study)
    create = storage.create_new_trial

    def guarded(study_id: int, template_trial: Any = None) -> int:
        if study_id == sid and template_trial is None:
            raise refusal()
        return create(study_id, template_trial)

    storage.create_new_trial = guarded


def storage_backend(storage: BaseStorage) -> BaseStorage:
    """The storage under Optuna's cache (``optuna.load_study`` wraps an RDB storage in ``_CachedStorage``)."""
    from optuna.storages._cached_storage import _CachedStorage

    return storage._backend if isinstance(storage, _CachedStorage) else storage


def trial_id(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """A trial's id in its storage (its ``number`` counts per study; the storage keys by id)."""
    return trial._trial_id


def study_id(study: Any) -> int:
    """The storage id of a study (an `optuna.Study` or a `FrozenStudy` from ``get_all_studies``)."""
    return study._study_id


def redis_ping(backend: Any) -> None:
    """Ask a `JournalRedisBackend`'s Redis for an answer now (it connects lazily)."""
    backend._redis.ping()


def redis_time(backend: Any) -> float:
    """The Redis server's clock (seconds), through a `JournalRedisBackend`'s client."""
    seconds, micros = backend._redis.time()
    return seconds + micros / 1e6


def redis_journal(backend: Any) -> tuple[Any, str]:
    """A `JournalRedisBackend`'s client and key prefix: its entries are ``PREFIX:log:N``, N up to ``PREFIX:log_number``."""
    return backend._redis, backend._prefix


def rdb_heartbeats(
    storage: optuna.storages.RDBStorage, study_id: int, promise_key: str
) -> tuple[Any, dict[int, tuple[Any, Any]]]:
    """The database's clock now, and each RUNNING trial's last beat (None: none yet) and promise (the system
    attribute ``promise_key``).

    Beats are written with the database's clock (Optuna's heartbeat table), so ages need no other.
    """
    import json

    import sqlalchemy
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(storage.scoped_session) as session:
        now = session.execute(sqlalchemy.func.now()).scalar().replace(tzinfo=None)
        rows = (
            session.query(models.TrialModel.trial_id, models.TrialHeartbeatModel.heartbeat)
            .outerjoin(models.TrialHeartbeatModel, models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id)
            .filter(models.TrialModel.study_id == study_id, models.TrialModel.state == optuna.trial.TrialState.RUNNING)
            .all()
        )
        ids = [row[0] for row in rows]
        promises = (
            dict(
                session.query(models.TrialSystemAttributeModel.trial_id, models.TrialSystemAttributeModel.value_json)
                .filter(
                    models.TrialSystemAttributeModel.trial_id.in_(ids),
                    models.TrialSystemAttributeModel.key == promise_key,
                )
                .all()
            )
            if ids
            else {}
        )
    return now, {
        tid: (
            beat.replace(tzinfo=None) if beat is not None else None,
            json.loads(promises[tid]) if tid in promises else None,
        )
        for tid, beat in rows
    }


def take_waiting(storage: optuna.storages.RDBStorage, trial_id: int) -> bool:
    """Mark a queued (WAITING) trial RUNNING in one statement; False if it was not WAITING.

    Optuna reads the state, then writes it; PostgreSQL and MySQL lock the row in between
    (SELECT ... FOR UPDATE), SQLite does not, so two processes could both take the trial.
    """
    import datetime

    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    table = models.TrialModel.__table__
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)  # Optuna 5 stores UTC
    with _create_scoped_session(storage.scoped_session) as session:
        taken = session.execute(
            table.update()
            .where(table.c.trial_id == trial_id, table.c.state == optuna.trial.TrialState.WAITING)
            .values(state=optuna.trial.TrialState.RUNNING, datetime_start=now)
        ).rowcount
    return taken == 1


def write_trial_attrs(
    storage: optuna.storages.RDBStorage,
    trial_id: int,
    user_attrs: dict[str, Any],
    intermediate: dict[int, float],
    params: dict[str, tuple[float, Any]] | None = None,
) -> None:
    """Write a running trial's parameters (name: (internal value, distribution)), user attributes and epoch
    reports in one transaction: Optuna's RDB storage commits each on its own (a transaction, and on SQLite
    an fsync, per value). Each write is checked as Optuna's own: a parameter's distribution against the
    study's, a finished trial refused."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(storage.scoped_session, True) as session:
        for name, (value, distribution) in (params or {}).items():
            storage._set_trial_param_without_commit(session, trial_id, name, value, distribution)
        for key, value in user_attrs.items():
            storage._set_trial_attr_without_commit(session, models.TrialUserAttributeModel, trial_id, key, value)
        for step, value in intermediate.items():
            storage._set_trial_intermediate_value_without_commit(session, trial_id, step, value)


class StudyView:
    """A study as a sampler sees it: of the trials Optuna would hand the sampler, those ``select`` keeps;
    everything else is the study itself.

    Optuna's samplers read a study's trials through its private ``_get_trials`` (with a cache
    per trial), so a view must answer that name; ``select`` gets every trial in number order
    and is asked again only when the list it got changes.
    """

    def __init__(self, study: optuna.Study, select: Any) -> None:
        self._study, self._select = study, select
        self._seen: tuple[Any, list[FrozenTrial]] | None = None

    def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list[FrozenTrial]:
        every = self._study._get_trials(deepcopy=False, states=None, use_cache=use_cache)
        if self._seen is None or self._seen[0] is not every:
            self._seen = (every, self._select(every))
        trials = self._seen[1] if states is None else [t for t in self._seen[1] if t.state in states]
        return copy.deepcopy(trials) if deepcopy else trials

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)


def write_journal_logs(
    storage: JournalStorage,
    trial_id: int,
    user_attrs: dict[str, Any],
    intermediate: dict[int, float],
    params: dict[str, tuple[float, Any]] | None = None,
) -> None:
    """The same writes on a journal storage in one append and one read of the journal: Optuna's journal storage
    appends a line (on Redis, a round trip) and reads the journal's new lines once per value. Each line is the
    one Optuna's own method writes, and is checked as Optuna checks it when the journal is read back."""
    from optuna.distributions import distribution_to_json
    from optuna.storages.journal._storage import JournalOperation

    head = {"worker_id": storage._replay_result.worker_id, "trial_id": trial_id}
    logs = [
        {
            "op_code": JournalOperation.SET_TRIAL_PARAM,
            **head,
            "param_name": name,
            "param_value_internal": value,
            "distribution": distribution_to_json(distribution),
        }
        for name, (value, distribution) in (params or {}).items()
    ]
    logs += [
        {"op_code": JournalOperation.SET_TRIAL_USER_ATTR, **head, "user_attr": {k: v}} for k, v in user_attrs.items()
    ]
    logs += [
        {"op_code": JournalOperation.SET_TRIAL_INTERMEDIATE_VALUE, **head, "step": step, "intermediate_value": value}
        for step, value in intermediate.items()
    ]
    with storage._thread_lock:
        storage._backend.append_logs(logs)
        storage._sync_with_backend()


def grpc_deadline(proxy: Any, seconds: float) -> None:
    """Give every call of Optuna's `GrpcStorageProxy` a deadline: Optuna's client sets none, and a call across a
    dead link then waits for ever. Its channel and stub (and its trial cache's stub) are replaced by ones whose
    calls end with DEADLINE_EXCEEDED after ``seconds``."""
    import grpc
    from optuna.storages._grpc.auto_generated import api_pb2_grpc

    class _Deadline(grpc.UnaryUnaryClientInterceptor):
        def intercept_unary_unary(self, continuation, details, request):
            if details.timeout is None:
                details = details._replace(timeout=seconds)
            return continuation(details, request)

    stub = api_pb2_grpc.StorageServiceStub(grpc.intercept_channel(proxy._channel, _Deadline()))
    proxy._stub = stub
    proxy._cache.grpc_client = stub


def grpc_proxy_server(storage: BaseStorage, host: str, port: int, threads: int) -> tuple[Any, int]:
    """Optuna's gRPC proxy server on ``storage``, not started, and the port it bound (``port`` 0: any free one).
    Optuna's `run_grpc_proxy_server` builds the same and then blocks; its `make_server` hides the port."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc
    from optuna.storages._grpc.auto_generated import api_pb2_grpc
    from optuna.storages._grpc.servicer import OptunaStorageProxyService

    server = grpc.server(ThreadPoolExecutor(max_workers=threads))
    api_pb2_grpc.add_StorageServiceServicer_to_server(OptunaStorageProxyService(storage), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    return server, bound


def journal_lock(backend: Any):
    """The lock a `JournalFileBackend` takes around each append (held while a torn line is repaired)."""
    from optuna.storages.journal._file import get_lock_file

    return get_lock_file(backend._lock)
