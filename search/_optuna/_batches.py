"""Several writes of a running trial in one transaction or one append; a study as a sampler sees it."""

from __future__ import annotations

import copy
import json
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.trial import FrozenTrial


def write_trial_attrs(
    storage: optuna.storages.RDBStorage,
    trial_id: int,
    user_attrs: dict[str, Any],
    intermediate: dict[int, float],
    params: dict[str, tuple[float, Any]] | None = None,
) -> None:
    """Write a running trial's parameters (name: (internal value, distribution)), user attributes and epoch
    reports in one transaction, with Optuna's checks: the trial still running, a parameter's distribution
    compatible with the study's.

    Optuna's RDB storage commits each value on its own (a transaction, and on SQLite an fsync, per value),
    and its ``_set_*_without_commit`` helpers read the trial again for each value, through the ORM (about
    1 ms a query on SQLite): here the trial is read once, the rows this trial already holds for those keys
    once per table, a parameter's distribution in the study once per process (the first row of a name never
    changes, as Optuna deletes no trial), all as plain SQL rows.
    """
    from optuna.distributions import check_distribution_compatibility, distribution_to_json
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from sqlalchemy import insert, select

    trials = models.TrialModel.__table__.c
    with _create_scoped_session(storage.scoped_session, True) as session:
        row = session.execute(select(trials.study_id, trials.state).where(trials.trial_id == trial_id)).first()
        if row is None:
            models.TrialModel.find_or_raise_by_id(trial_id, session)  # Optuna's KeyError
        study_id, state = row
        storage.check_trial_is_updatable(trial_id, state)
        rows = []
        for name, (value, distribution) in (params or {}).items():
            previous = _study_distribution(storage, session, study_id, name)
            if previous is not None:
                check_distribution_compatibility(previous, distribution)
            rows.append(
                {
                    "trial_id": trial_id,
                    "param_name": name,
                    "param_value": value,
                    "distribution_json": distribution_to_json(distribution),
                }
            )
        if rows:
            session.execute(insert(models.TrialParamModel.__table__), rows)
        _upsert(session, models.TrialUserAttributeModel, trial_id, "key", user_attrs, _user_attr_columns)
        _upsert(session, models.TrialIntermediateValueModel, trial_id, "step", intermediate, _report_columns)


def _study_distribution(storage: Any, session: Any, study_id: int, name: str) -> Any:
    """The distribution of parameter ``name`` in the study's first trial that has it (None: no trial has),
    remembered on the storage object once found."""
    from optuna.distributions import json_to_distribution
    from optuna.storages._rdb import models
    from sqlalchemy import select

    known = storage.__dict__.setdefault("_search_distributions", {})
    if (study_id, name) not in known:
        params, trials = models.TrialParamModel.__table__.c, models.TrialModel.__table__.c
        found = session.execute(
            select(params.distribution_json)
            .join_from(models.TrialParamModel.__table__, models.TrialModel.__table__)
            .where(trials.study_id == study_id, params.param_name == name)
            .limit(1)
        ).first()
        if found is None:
            return None  # not remembered: another worker may write the first one
        known[(study_id, name)] = json_to_distribution(found[0])
    return known[(study_id, name)]


def _user_attr_columns(value: Any) -> dict[str, Any]:
    return {"value_json": json.dumps(value)}


def _report_columns(value: float) -> dict[str, Any]:
    from optuna.storages._rdb import models

    stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
    return {"intermediate_value": stored, "intermediate_value_type": kind}


def _upsert(session: Any, model: Any, trial_id: int, key: str, values: dict, columns: Any) -> None:
    """Rows of ``model`` for the trial, one per ``key`` in ``values``: those it holds updated, the rest added.
    (Only the worker that runs a trial writes its user attributes and reports, so no one races it here.)"""
    from sqlalchemy import insert, select, update

    if not values:
        return
    table = model.__table__
    column = table.c[key]
    held = set(session.execute(select(column).where(table.c.trial_id == trial_id, column.in_(values))).scalars())
    new = [{"trial_id": trial_id, key: name, **columns(v)} for name, v in values.items() if name not in held]
    if new:
        session.execute(insert(table), new)
    for name in held:
        session.execute(
            update(table).where(table.c.trial_id == trial_id, column == name).values(**columns(values[name]))
        )


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
