"""Warm start: a new study's first trials are an earlier study's best configurations.

The earlier study (in this storage or another) gives its pick first (confirmation's, else the
best search value), then its other best distinct configurations. Each is taken where the new
space admits it: keys the space lacks are left out, keys it adds left to the sampler; a value
outside a range or the choices leaves that configuration out, with one line saying why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from search._errors import SearchError
from search.storages import open_storage, redact, resolve_storage_url

if TYPE_CHECKING:
    from objectives import SearchSpace
    from search.study._config import RunConfig

WARM_ATTR = "warm_start"  # a warm-start trial's user attribute: "STUDY#NUMBER" it came from
WARM_TRIALS = 5  # how many of the earlier study's best configurations come first


def warm_trials(config: RunConfig, space: SearchSpace) -> tuple[list[tuple[dict[str, Any], str]], list[str]]:
    """(values, "STUDY#NUMBER") of each configuration to enqueue, best first, and a line for each left out."""
    import optuna
    from optuna.trial import TrialState

    from search.study._costs import score
    from search.study._pick import pick_of

    url = resolve_storage_url(config.warm_start_storage or config.storage)
    try:
        earlier = optuna.load_study(study_name=config.warm_start, storage=open_storage(url, create=False))
    except KeyError:
        raise SearchError(f"`warm_start` {config.warm_start!r}: no such study in {redact(url)}") from None
    maximize = earlier.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    complete = [
        t
        for t in earlier.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.values and "diverged" not in t.user_attrs
    ]
    if not complete:
        raise SearchError(f"`warm_start` {config.warm_start!r} has no completed trial to start from")
    first = pick_of(earlier).number
    ranked = sorted(complete, key=lambda t: (t.number != first, -score(t) if maximize else score(t), t.number))
    chosen, seen, notes = [], set(), []
    for trial in ranked:
        key = tuple(sorted(trial.params.items()))
        if key in seen:
            continue
        seen.add(key)
        values, why = space.admitted(trial.params)
        if why:
            notes.append(f"trial {trial.number} of {config.warm_start!r} is not taken: {why}")
        else:
            chosen.append((values, f"{config.warm_start}#{trial.number}"))
        if len(chosen) + len(notes) == WARM_TRIALS:
            break
    return chosen, notes
