"""What Optuna prints: its per-trial INFO lines are replaced by our own (one per trial, a summary)."""

from __future__ import annotations


def quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
