"""Confirmation: the search's leaders retrained on fresh resamples, the pick chosen there, and a figure to quote.

A study's best validation value is optimistic: it is the maximum of many noisy figures,
and selection rewards the lucky split and seed ("overtuning"; Schneider, Bisch and
Feurer, AutoML 2025). Confirmation races the leaders on resamples that took no part in
the search, picks the best there, and measures the pick alone on resamples the choice
never saw: the figure to quote.

- `_config`: how much to do (``--confirm K,R``);
- `_rules`: the statistics: racing, ranking, the quoted interval;
- `_plan`: which configurations, which resamples, agreed on by every process;
- `_retrain`: the objective of one retrain;
- `_run`: the orchestration: the loop every process runs, workers, the stored summary;
- `_summary`: what a confirmation found, as typed results (`Confirmation`, `Ranked`, `Quote`, ...);
- `_yardstick`: gradient-boosted trees on the same resamples, for tables.
"""

from search.confirmation._config import DEFAULT_CANDIDATES, DEFAULT_RESAMPLES, ConfirmConfig

__all__ = ["DEFAULT_CANDIDATES", "DEFAULT_RESAMPLES", "ConfirmConfig", "run_confirmation"]


def __getattr__(name: str):
    if name == "run_confirmation":  # the orchestration imports torch's objective: on first use only
        from search.confirmation._run import run_confirmation

        return run_confirmation
    raise AttributeError(f"module 'search.confirmation' has no attribute {name!r}")
