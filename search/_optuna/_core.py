"""Optuna's storages and studies as the project extends them: hooks, backends, heartbeats, locks."""

from __future__ import annotations

import copy
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat  # the interface heartbeats plug into
from optuna.trial import FrozenTrial

from search._optuna._reads import read_trial, read_trials

# The private methods through which Optuna's cache (`_CachedStorage`) writes to an RDB storage: a
# wrapper of the storage's writes must wrap these as well as the public ones.
RDB_PRIVATE_WRITES = ("_create_new_trial", "_set_trial_param")


class RDBStorageHooks(RDBStorage):
    """Optuna's RDB storage with the two private methods this project extends, under public names, its trials
    made in one transaction with their system attributes (and first beat), and its trials read as plain rows.

    Optuna's cache creates every trial through ``_create_new_trial`` (not ``create_new_trial``),
    which prepares it in ``_get_prepared_new_trial``, and ``fail_stale_trials`` asks
    ``_get_stale_trial_ids``: a subclass overrides `create_frozen_trial`, `beats_when_made` and
    `stale_trial_ids`, and a newer Optuna that renames any of them breaks this module's contract
    test, not a study.
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

    def beats_when_made(self) -> bool:
        """Whether a RUNNING trial this storage makes beats once in its creation's transaction (a heartbeat
        storage says yes)."""
        return False

    def _get_prepared_new_trial(self, study_id: int, template_trial: FrozenTrial | None, session: Any) -> Any:
        """Optuna's new trial in its creation's transaction, its template's system attributes inserted as plain
        rows (Optuna writes each as an ORM upsert that reads the trial again, a few ms each, for a trial that
        has none to update: every trial a worker makes carries two, its promise and its token), and its first
        beat where `beats_when_made` (on the database's clock, as every beat): one commit, not two."""
        import json

        from optuna.storages._rdb import models
        from sqlalchemy import insert

        attrs = template_trial.system_attrs if template_trial is not None else {}
        if attrs:
            template_trial = copy.copy(template_trial)
            template_trial.system_attrs = {}
        trial = super()._get_prepared_new_trial(study_id, template_trial, session)
        if attrs:
            rows = [{"trial_id": trial.trial_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()]
            session.execute(insert(models.TrialSystemAttributeModel.__table__), rows)
        if trial.state == optuna.trial.TrialState.RUNNING and self.beats_when_made():
            session.execute(insert(models.TrialHeartbeatModel.__table__).values(trial_id=trial.trial_id))
        return trial

    # Trials are read as plain rows, not ORM objects: about half the time (search/_optuna/_reads.py).
    def _get_trials(
        self, study_id: int, states: Any, included_trial_ids: set[int], trial_id_greater_than: int
    ) -> list[FrozenTrial]:
        return read_trials(self, study_id, states, included_trial_ids, trial_id_greater_than)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return read_trial(self, trial_id)


class JournalStorageHooks(JournalStorage, BaseHeartbeat):
    """Optuna's journal storage as a heartbeat storage (Optuna gives it none): a subclass says which
    trials are stale in `stale_trial_ids`, the public name of `BaseHeartbeat`'s private method."""

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


def trials_of_this_ask(study: optuna.Study, states: tuple) -> list[FrozenTrial]:
    """The study's trials in ``states`` as this thread read them once since its last ``ask`` (Optuna's own
    cache per trial: the sampler's read, when it has made one), not copied."""
    return study._get_trials(deepcopy=False, states=states, use_cache=True)


class _InOrder:
    """Optuna's cache (`_CachedStorage`) with each study's trials kept in number order as they arrive.

    Its ``get_all_trials`` sorts every cached trial at every call (a Python key call each: 2 ms at 5,000 trials,
    and TPE with the constant liar reads the study afresh several times an ask), so a trial's cost grew with the
    study. Trial numbers are 0, 1, 2... within a study: a trial read again (a running one) takes its place by
    number, a new one is appended; anything else (numbers arriving out of order) sorts again, once.
    """

    def __init__(self, cache: Any) -> None:
        self.cache = cache
        self.ordered: dict[int, list[FrozenTrial] | None] = {}
        self._add = cache._add_trials_to_cache

    def add_trials_to_cache(self, study_id: int, trials: list[FrozenTrial]) -> None:
        self._add(study_id, trials)
        ordered = self.ordered.get(study_id)
        for trial in trials if ordered is not None else ():
            number = trial.number
            if number < len(ordered) and ordered[number].number == number:
                ordered[number] = trial
            elif number == len(ordered):
                ordered.append(trial)
            else:
                self.ordered[study_id] = None
                return

    def get_all_trials(self, study_id: int, deepcopy: bool = True, states: Any = None) -> list[FrozenTrial]:
        cache = self.cache
        cache._read_trials_from_remote_storage(study_id)
        with cache._lock:
            ordered = self.ordered.get(study_id)
            if ordered is None:
                ordered = sorted(cache._studies[study_id].trials.values(), key=lambda t: t.number)
                self.ordered[study_id] = ordered
            trials = list(ordered) if states is None else [t for t in ordered if t.state in states]
        return copy.deepcopy(trials) if deepcopy else trials


def keep_trials_in_order(storage: BaseStorage) -> None:
    """Optuna's cache in front of an RDB storage keeps its trials in number order (`_InOrder`); other storages
    are left as they are. Before the storage clock, which then times it."""
    from optuna.storages._cached_storage import _CachedStorage

    if isinstance(storage, _CachedStorage) and not hasattr(storage, "_search_in_order"):
        in_order = _InOrder(storage)
        storage._search_in_order = in_order
        storage._add_trials_to_cache = in_order.add_trials_to_cache
        storage.get_all_trials = in_order.get_all_trials


def artifact_ids(trial: FrozenTrial) -> list[str]:
    """The ids of the Optuna artifacts uploaded to ``trial`` (its system attributes name them), without a read."""
    from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX

    return [k.removeprefix(ARTIFACTS_ATTR_PREFIX) for k in trial.system_attrs if k.startswith(ARTIFACTS_ATTR_PREFIX)]


def asked_trial(trial: optuna.Trial) -> FrozenTrial:
    """The trial as ``ask`` read it (its system attributes: ``failed_trial``, ``retry_history``), without a read."""
    return trial._cached_frozen_trial


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


def journal_lock(backend: Any):
    """The lock a `JournalFileBackend` takes around each append (held while a torn line is repaired)."""
    from optuna.storages.journal._file import get_lock_file

    return get_lock_file(backend._lock)


def share_params(trial: optuna.Trial, values: dict[str, Any]) -> None:
    """Make ``trial`` suggest ``values`` for those parameters, as an enqueued trial's fixed parameters do; values
    it was enqueued with itself win. (Optuna reads a trial's fixed parameters once, when it is asked.)"""
    trial._fixed_params = {**values, **trial._fixed_params}


def heartbeat_thread(trial: optuna.Trial, storage: BaseStorage) -> Any:
    """The thread that beats for ``trial`` while it runs (a context manager), as `study.optimize` starts one."""
    from optuna.storages._heartbeat import get_heartbeat_thread

    return get_heartbeat_thread(trial._trial_id, storage)


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail (and queue again) the trials whose heartbeat stopped, as `study.optimize` does before each trial."""
    import warnings

    from optuna.storages._heartbeat import is_heartbeat_enabled

    if is_heartbeat_enabled(study._storage):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
