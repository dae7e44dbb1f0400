"""A study's trials read from an RDB storage in plain SQL rows: the same FrozenTrials as Optuna's ORM reads.

Optuna's RDB storage reads a trial through SQLAlchemy's ORM: a query for the trials, one per
related table, and an ORM object per row; about 5 ms of Python for a handful of trials on SQLite,
more after training has cooled the CPU's caches. Its cache re-reads every unfinished trial at each
refresh (the sampler's and the pruner's reads, each trial), so on a table's short trials these reads
were a third of a worker's time on the storage. The same queries through SQLAlchemy Core, rows as
tuples, take about half of that (a third for a whole study); ``tests/test_optuna_private.py`` checks
that the two read the same trials.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Container, Iterable
from typing import Any

from optuna.distributions import json_to_distribution
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import FrozenTrial
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import OperationalError

_T = models.TrialModel.__table__.c
_CHUNK = 500  # ids a query, as SQLAlchemy's selectinload
_CHILDREN = {  # the rows a trial's parts come from, and the columns read of each
    "params": (models.TrialParamModel, ("param_id", "param_name", "param_value", "distribution_json")),
    "values": (models.TrialValueModel, ("objective", "value", "value_type")),
    "user": (models.TrialUserAttributeModel, ("key", "value_json")),
    "system": (models.TrialSystemAttributeModel, ("key", "value_json")),
    "reports": (models.TrialIntermediateValueModel, ("step", "intermediate_value", "intermediate_value_type")),
}


def read_trials(
    storage: Any,
    study_id: int,
    states: Container | None,
    included_trial_ids: set[int],
    trial_id_greater_than: int,
) -> list[FrozenTrial]:
    """What ``RDBStorage._get_trials`` answers (the trials of the study in those states, those with an id in
    ``included_trial_ids`` or above ``trial_id_greater_than``, by id), from plain rows."""
    included = {i for i in included_trial_ids if i <= trial_id_greater_than}
    where = [_T.study_id == study_id]
    if states is not None:
        assert isinstance(states, Iterable)
        where.append(_T.state.in_(list(states)))
    newer = _T.trial_id > trial_id_greater_than
    with _create_scoped_session(storage.scoped_session) as session:
        models.StudyModel.find_or_raise_by_id(study_id, session)  # Optuna's KeyError for a missing study
        if trial_id_greater_than <= -1:
            return _frozen(session, and_(*where))
        try:
            return _frozen(session, and_(*where, or_(_T.trial_id.in_(included), newer) if included else newer))
        except OperationalError:
            # Too many ids for one IN (each dialect has its limit): as Optuna does, read the lot and pick.
            trials = _frozen(session, and_(*where))
            return [t for t in trials if t._trial_id in included or t._trial_id > trial_id_greater_than]


def read_trial(storage: Any, trial_id: int) -> FrozenTrial:
    """What ``RDBStorage.get_trial`` answers, from plain rows (Optuna's KeyError for an unknown trial)."""
    with _create_scoped_session(storage.scoped_session) as session:
        trials = _frozen(session, _T.trial_id == trial_id)
        if not trials:
            models.TrialModel.find_or_raise_by_id(trial_id, session)
        return trials[0]


def _frozen(session: Any, where: Any) -> list[FrozenTrial]:
    heads = session.execute(
        select(_T.trial_id, _T.number, _T.state, _T.datetime_start, _T.datetime_complete)
        .where(where)
        .order_by(_T.trial_id)
    ).all()
    if not heads:
        return []
    ids = [head[0] for head in heads]
    parts = {name: _rows(session, model, columns, ids) for name, (model, columns) in _CHILDREN.items()}
    return [_trial(head, {name: rows.get(head[0], []) for name, rows in parts.items()}) for head in heads]


def _rows(session: Any, model: Any, columns: tuple[str, ...], ids: list[int]) -> dict[int, list[tuple]]:
    """The rows of ``model`` for the trials ``ids``, by trial: by their ids, as the ORM's ``selectinload``
    reads them (the trials' filter again would scan the study once per table), 500 ids a query as it does."""
    table = model.__table__.c
    by_trial: dict[int, list[tuple]] = defaultdict(list)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for trial_id, *row in session.execute(
            select(table.trial_id, *(table[c] for c in columns)).where(table.trial_id.in_(chunk))
        ):
            by_trial[trial_id].append(tuple(row))
    return by_trial


def _trial(head: tuple, parts: dict[str, list[tuple]]) -> FrozenTrial:
    trial_id, number, state, started, completed = head
    values = None
    if parts["values"]:
        values = [0.0] * len(parts["values"])
        for objective, value, kind in parts["values"]:
            values[objective] = models.TrialValueModel.stored_repr_to_value(value, kind)
    params, dists = {}, {}
    for _, name, value, dist_json in sorted(parts["params"]):  # by param_id, as Optuna orders them
        dists[name] = json_to_distribution(dist_json)
        params[name] = dists[name].to_external_repr(value)
    return FrozenTrial(
        number=number,
        state=state,
        value=None,
        values=values,
        datetime_start=started,
        datetime_complete=completed,
        params=params,
        distributions=dists,
        user_attrs={key: json.loads(v) for key, v in parts["user"]},
        system_attrs={key: json.loads(v) for key, v in parts["system"]},
        intermediate_values={
            step: models.TrialIntermediateValueModel.stored_repr_to_intermediate_value(v, kind)
            for step, v, kind in parts["reports"]
        },
        trial_id=trial_id,
    )
