"""Confirmation: the search's leaders retrained on fresh resamples, and ranked by what they score there.

A study's best validation value is optimistic: it is the maximum of many noisy figures,
and selection rewards the lucky split and seed ("overtuning"; Schneider, Bisch and
Feurer, AutoML 2025). Confirmation retrains the leaders on resamples that took no part
in the search and ranks them there.

- `_config`: how much to do (``--confirm K,R``);
- `_rules`: the statistics: per-candidate figures, racing, ranking;
- `_plan`: which configurations, which resamples, the retrains' own study;
- `_retrain`: the objective of one retrain;
- `_run`: the orchestration: rounds, workers, the stored summary.
"""

from search.confirmation._config import DEFAULT_CANDIDATES, DEFAULT_RESAMPLES, ConfirmConfig

__all__ = ["DEFAULT_CANDIDATES", "DEFAULT_RESAMPLES", "ConfirmConfig", "run_confirmation"]


def __getattr__(name: str):
    if name == "run_confirmation":  # the orchestration imports torch's objective: on first use only
        from search.confirmation._run import run_confirmation

        return run_confirmation
    raise AttributeError(f"module 'search.confirmation' has no attribute {name!r}")
