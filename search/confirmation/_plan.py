"""What confirmation does: which configurations, on which resamples, agreed on by every process.

The candidates are the K best configurations of the search (distinct parameters, not
diverged) and the study's baseline (the textbook default it started with). Unless the
user named K, the list is cut so that confirmation's expected cost (each candidate's own
training time, per resample) stays within what the search itself spent.

The resamples never reuse the search's validation split:

- a pool under `KFOLD_BELOW` rows: K-fold (`FOLDS` folds), so every row validates; the
  race runs on one partition, the figure to quote on another, freshly shuffled one;
- a larger pool: holdouts whose validation rows are drawn from the search's training rows
  only; the figure to quote on holdouts of their own.

A plan is stored as a marker trial (PRUNED, user attribute ``plan``) in the retrains'
study. Processes that start confirming together each write one, then all adopt the
lowest-numbered: trial numbers are handed out by the storage, so they agree without any
other lock. Plans form a chain per ``--confirm`` setting: a process joins the newest
unfinished plan, or starts a new one once that is finished and the leaders have changed.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives.data import Resample
from search._errors import SearchError
from search.confirmation._config import CONFIRM_SUFFIX
from search.study._costs import admitted, score
from search.study._record import BASELINE_ATTR

KFOLD_BELOW = 5_000  # pool rows: below this, K-fold
FOLDS = 5
HOLDOUTS = 3
PLAN_ATTR = "plan"


@dataclass(frozen=True)
class Plan:
    """One confirmation: its candidates (search trial numbers), the race's and the estimate's resamples."""

    spec: str  # the --confirm setting it answers
    candidates: tuple[int, ...]
    race: tuple[str, ...]  # resample keys, in round order
    estimate: tuple[str, ...]  # fresh resample keys for the figure to quote
    scheme: str  # "kfold" or "holdout"
    resolution: float  # the metric's step on one validation split (1 / rows for accuracy; 0 otherwise)
    test_to_train: float  # validation rows over training rows of one resample
    search_best: int
    baseline: int | None
    id: int | None = None  # its marker trial's number, once stored
    after: int | None = None  # the plan it follows in its chain
    trimmed: int = 0  # leaders left out to stay within the search's time
    maximize: bool = True
    notes: tuple[str, ...] = field(default=())
    pick: str | None = None  # the constraint its candidates meet

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if k != "id"}

    @classmethod
    def from_trial(cls, trial: FrozenTrial) -> Plan:
        d = dict(trial.user_attrs[PLAN_ATTR])
        tuples = {k: tuple(d.get(k) or ()) for k in ("candidates", "race", "estimate", "notes")}
        return cls(**{**d, **tuples, "id": trial.number})

    def same_work(self, other: Plan) -> bool:
        return (self.candidates, self.race, self.estimate) == (other.candidates, other.race, other.estimate)


def derived_seed(study_seed: int, role: str, index: int) -> int:
    """A resample's seed: a stable hash of the study's seed, its role and index, never the search's own seed."""
    digest = hashlib.sha256(f"{study_seed}/{role}/{index}".encode()).digest()
    seed = int.from_bytes(digest[:4], "big") % 2**31
    return seed + 1 if seed == study_seed else seed


def resample_keys(study_seed: int, scheme: str, role: str, count: int) -> list[str]:
    """``count`` resamples of ``scheme`` for ``role`` ("race" or "estimate"): K-fold folds, a partition
    after another, or holdouts."""
    if scheme == "kfold":
        return [
            Resample("kfold", derived_seed(study_seed, role, i // FOLDS), i % FOLDS, FOLDS).key for i in range(count)
        ]
    return [Resample("holdout", derived_seed(study_seed, role, i)).key for i in range(count)]


def train_seed(key: str) -> int:
    """The training seed of every candidate on one resample: paired retrains start from the same weights."""
    r = Resample.from_key(key)
    return (r.seed * 31 + r.fold) % 2**31


def leaders(
    study: optuna.Study, k: int, maximize: bool = True, pick: str | None = None
) -> tuple[list[FrozenTrial], FrozenTrial | None]:
    """The top ``k`` complete trials by the metric (one per distinct configuration, diverged ones left
    out, only those the ``pick`` constraint admits), and the baseline.

    The baseline (the textbook default a study starts with) joins the leaders when it is not
    among them: they must beat it on fresh resamples, not only on the search's split. Under a
    constraint it joins only when the constraint admits it too: the pick must meet it.
    """
    complete = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if score(t) is not None and "diverged" not in t.user_attrs
    ]
    complete = admitted(complete, pick)
    chosen, seen = [], set()
    for trial in sorted(complete, key=lambda t: (-score(t) if maximize else score(t), t.number)):
        key = tuple(sorted(trial.params.items()))
        if key not in seen:
            seen.add(key)
            chosen.append(trial)
        if len(chosen) == k:
            break
    baseline = next((t for t in complete if t.user_attrs.get(BASELINE_ATTR)), None)
    if chosen and baseline is not None and tuple(sorted(baseline.params.items())) not in seen:
        chosen.append(baseline)
    return chosen, baseline


def trim_to_budget(
    chosen: list[FrozenTrial], baseline: FrozenTrial | None, budget: float, rounds: int, estimate: int
) -> tuple[list[FrozenTrial], int]:
    """The leaders that fit in ``budget`` seconds (each costs its own training time per resample);
    the search's best and the baseline always stay. How many were left out."""
    keep = list(chosen)

    def cost(trials: list[FrozenTrial]) -> float:
        times = [_seconds(t) for t in trials]
        return rounds * sum(times) + estimate * max(times, default=0.0)

    removable = [t for t in keep[1:] if t is not baseline]
    while removable and cost(keep) > budget and len(keep) > 2:
        keep.remove(removable.pop())
    return keep, len(chosen) - len(keep)


def _seconds(trial: FrozenTrial) -> float:
    """A trial's whole time, from its creation to its end: its training and everything around it (the storage,
    the sampler, loading its split), as a retrain of it will take."""
    if trial.duration:
        return trial.duration.total_seconds()
    seconds = trial.user_attrs.get("seconds")
    return float(seconds) if isinstance(seconds, (int, float)) else 0.0


def search_seconds(study: optuna.Study) -> float:
    """What the search spent: every finished trial's own time (all workers, all hosts)."""
    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(_seconds(t) for t in study.get_trials(deepcopy=False, states=finished))


def confirmation_study(storage, name: str, direction: str) -> optuna.Study:
    """The retrains' own study, ``NAME:confirm``; a study of that name that is not NAME's confirmation is refused."""
    study = optuna.create_study(
        study_name=name + CONFIRM_SUFFIX,
        storage=storage,
        direction=direction,
        load_if_exists=True,
        sampler=optuna.samplers.RandomSampler(0),
        pruner=optuna.pruners.NopPruner(),
    )
    owner = study.user_attrs.get("confirms")
    if owner is None and study.get_trials(deepcopy=False):
        raise SearchError(
            f"a study named {name + CONFIRM_SUFFIX!r} exists and is not the confirmation of {name!r}; "
            f"rename or delete it (names ending in {CONFIRM_SUFFIX} are the confirmations')"
        )
    if owner is None:
        study.set_user_attr("confirms", name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(["the metric on a fresh resample"])
    elif owner != name:
        raise SearchError(f"study {name + CONFIRM_SUFFIX!r} confirms {owner!r}, not {name!r}")
    return study


def plans(confirm: optuna.Study) -> list[Plan]:
    return [
        Plan.from_trial(t)
        for t in confirm.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
        if isinstance(t.user_attrs.get(PLAN_ATTR), dict)
    ]


def current(all_plans: list[Plan], spec: str) -> Plan | None:
    """The newest plan of the chain for ``spec``: from the first plan, each time the earliest that follows."""
    mine = [p for p in all_plans if p.spec == spec]
    head, found = None, None
    while True:
        following = [p for p in mine if p.after == (head.id if head else None)]
        if not following:
            return found
        head = found = min(following, key=lambda p: p.id)


def adopt(confirm: optuna.Study, proposal: Plan, finished) -> Plan:
    """The plan this process works on: the chain's newest when unfinished (or finished on the same
    work), else the proposal, stored; of processes storing at once, all take the lowest-numbered."""
    newest = current(plans(confirm), proposal.spec)
    if newest is not None and (not finished(newest) or newest.same_work(proposal)):
        return newest
    after = newest.id if newest else None
    marker = optuna.trial.create_trial(
        state=TrialState.PRUNED,
        params={},
        distributions={},
        user_attrs={PLAN_ATTR: {**proposal.to_dict(), "after": after}},
    )
    confirm.add_trial(marker)
    rivals = [p for p in plans(confirm) if p.spec == proposal.spec and p.after == after]
    return min(rivals, key=lambda p: p.id)
