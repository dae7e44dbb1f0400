"""Several writes of a running trial in one transaction or one append; a study as a sampler sees it."""

from __future__ import annotations

import copy
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
