"""What a confirmation has done so far, read from the storage, and what its plan needs next.

Everything here is a function of the plan and the stored retrains: every process that
reads them reaches the same race, the same pick and the same summary.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from optuna.trial import TrialState

from search.confirmation._plan import FOLDS, Plan
from search.confirmation._retrain import RESAMPLE, SOURCE
from search.confirmation._rules import Candidate, estimate, race, ranked
from search.confirmation._summary import Confirmation, Lead, Quote
from search.study._costs import score

if TYPE_CHECKING:
    from search.confirmation._context import ConfirmContext

LOST = "the storage connection was lost"


@dataclass
class State:
    """The retrains stored so far, by (search trial, resample key)."""

    values: dict[tuple[int, str], float] = field(default_factory=dict)
    in_flight: set[tuple[int, str]] = field(default_factory=set)
    waiting: int = 0
    running: int = 0
    failures: Counter = field(default_factory=Counter)
    errors: dict[tuple[int, str], str] = field(default_factory=dict)


def read(ctx: ConfirmContext, plan: Plan) -> State:
    """The plan's retrains as stored now: values (the first finished retrain of a pair counts), in flight, failures."""
    state = State()
    wanted = set(plan.candidates)
    for t in sorted(ctx.confirm.get_trials(deepcopy=False), key=lambda t: t.number):
        source, key = t.user_attrs.get(SOURCE), t.user_attrs.get(RESAMPLE)
        if source not in wanted or not isinstance(key, str):
            continue
        pair = (source, key)
        if t.state == TrialState.COMPLETE and t.values:
            state.values.setdefault(pair, t.values[0])
        elif t.state in (TrialState.WAITING, TrialState.RUNNING):
            state.in_flight.add(pair)
            state.waiting += t.state == TrialState.WAITING
            state.running += t.state == TrialState.RUNNING
        elif t.state == TrialState.FAIL and t.user_attrs.get("error") not in (None, LOST):
            state.failures[pair] += 1  # an error of its own; a Ctrl-C or a lost worker is no failure
            state.errors[pair] = t.user_attrs["error"]
    return state


def candidates(ctx: ConfirmContext, plan: Plan, state: State) -> list[Candidate]:
    trials = {t.number: t for t in ctx.study.get_trials(deepcopy=False)}
    return [
        Candidate(
            n,
            dict(trials[n].params),
            score(trials[n]),
            {k: state.values[(n, k)] for k in plan.race if (n, k) in state.values},
            baseline=n == plan.baseline,
        )
        for n in plan.candidates
    ]


def needed(
    ctx: ConfirmContext, plan: Plan, state: State
) -> tuple[list[tuple[int, str, str]], list[tuple[int, str, str]]]:
    """(the retrains the plan needs now, those of the next round: work for idle workers); both empty: done."""
    cands = candidates(ctx, plan, state)
    race_keys = list(plan.race)
    if len(cands) > 1:
        done = race(cands, race_keys, plan.maximize, plan.resolution)
        alive = [c for c in cands if not c.dropped]
        if done < len(race_keys) and len(alive) > 1:
            now = [(c.trial, race_keys[done], "race") for c in alive if race_keys[done] not in c.values]
            ahead = [
                (c.trial, race_keys[done + 1], "race")
                for c in alive
                if done + 1 < len(race_keys) and race_keys[done + 1] not in c.values
            ]
            return now, ahead
    pick = ranked(cands, race_keys, plan.maximize)[0] if len(cands) > 1 else cands[0]
    return [(pick.trial, k, "estimate") for k in plan.estimate if (pick.trial, k) not in state.values], []


def finished(ctx: ConfirmContext, plan: Plan) -> bool:
    now, _ = needed(ctx, plan, read(ctx, plan))
    return not now


def _lead(pick: Candidate, other: Candidate, keys: list[str], plan: Plan) -> Lead | None:
    """The pick's paired lead over another candidate on the race resamples both ran (positive: the pick is better)."""
    shared = [k for k in keys if k in pick.values and k in other.values]
    if len(shared) < 2:
        return None
    sign = 1.0 if plan.maximize else -1.0
    figure = estimate([sign * (pick.values[k] - other.values[k]) for k in shared], plan.test_to_train)
    return Lead(trial=other.trial, lead=figure["mean"], low=figure["low"], high=figure["high"], n=figure["n"])


def summary_of(ctx: ConfirmContext, plan: Plan, state: State) -> Confirmation:
    """The confirmation's result: a function of the plan and the stored values only."""
    cands = candidates(ctx, plan, state)
    race_keys = list(plan.race)
    if len(cands) > 1:
        race(cands, race_keys, plan.maximize, plan.resolution)
    order = ranked(cands, race_keys, plan.maximize)
    pick = order[0]
    shown = {k: state.values[(pick.trial, k)] for k in plan.estimate if (pick.trial, k) in state.values}
    figure = estimate(list(shown.values()), plan.test_to_train, bounds=ctx.metric.bounds) if shown else None
    by_trial = {c.trial: c for c in cands}
    versus = {
        name: _lead(pick, by_trial[other], race_keys, plan)
        for name, other in (("search_best", plan.search_best), ("baseline", plan.baseline))
        if other in by_trial and other != pick.trial
    }
    return Confirmation(
        plan=plan.id,
        spec=plan.spec,
        scheme=plan.scheme,
        folds=FOLDS if plan.scheme == "kfold" else None,
        versus={k: v for k, v in versus.items() if v is not None},
        candidates=len(plan.candidates),
        trimmed=plan.trimmed,
        resamples=len(race_keys),
        estimate_resamples=len(plan.estimate),
        metric=ctx.metric.name,
        direction=ctx.metric.direction,
        leader=pick.trial,
        search_best=plan.search_best,
        baseline=plan.baseline,
        ranking=tuple(c.ranked(race_keys) for c in order),
        estimate=Quote(trial=pick.trial, values=shown, **figure) if figure else None,
        constraint=plan.pick,
    )
