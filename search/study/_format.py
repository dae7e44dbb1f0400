"""Figures for people: values in their metric's terms, parameters, durations, the confirmation and the run summary."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from search.storages._clock import StorageTime
from search.study._summary import RunSummary

if TYPE_CHECKING:
    from search.confirmation._summary import Confirmation, Lead, Quote, Ranked, Yardstick

# Below this many training samples the run summary warns that the search value is optimistic.
SMALL_DATA = 20_000
# A SQLite storage taking this share of the workers' time gets a line of advice in the run summary.
ADVISE_SHARE = 0.25
# Each metric's column name in the trial lines.
SHORT = {
    "accuracy": "val_acc",
    "balanced_accuracy": "val_bal_acc",
    "log_loss": "val_logloss",
    "roc_auc": "val_auc",
    "rmse": "val_rmse",
    "mae": "val_mae",
    "r2": "val_r2",
}
LABELS = {
    "accuracy": "validation accuracy",
    "balanced_accuracy": "validation balanced accuracy",
    "log_loss": "validation log loss",
    "roc_auc": "validation ROC AUC",
    "rmse": "validation RMSE",
    "mae": "validation MAE",
    "r2": "validation R²",
}


def format_params(params: dict) -> str:
    return " ".join(f"{k}={_short(v)}" for k, v in params.items())


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def rounded(value):
    """``value`` for people: floats to 4 significant digits, inside lists and mappings too."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    return value


def format_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def format_value(value: float | None, metric: str = "accuracy") -> str:
    """A metric's value: errors in the target's units to 4 significant digits, scores to 4 decimals."""
    if value is None:
        return "-"
    return f"{value:.4g}" if metric in ("rmse", "mae") else f"{value:.4f}"


def label(metric: str | None) -> str:
    return LABELS.get(metric or "accuracy", f"validation {metric}")


def format_confirmed(c: Ranked, metric: str = "accuracy") -> str:
    """``0.8523 ± 0.0041`` (n >= 2), ``0.8500`` (one resample) or ``-``."""
    if c.mean is None:
        return "-"
    if c.n >= 2 and c.sd is not None:
        return f"{format_value(c.mean, metric)} ± {format_value(c.sd, metric)}"
    return format_value(c.mean, metric)


def format_interval(figure: Quote, metric: str = "accuracy") -> str:
    """``0.8498 (95% interval 0.8402 to 0.8594, n=5)``."""
    text = format_value(figure.mean, metric)
    if figure.low is not None:
        text += (
            f" (95% interval {format_value(figure.low, metric)} to {format_value(figure.high, metric)}, n={figure.n})"
        )
    return text


def _resamples(summary: Confirmation, count: int, fresh: bool = False) -> str:
    kind = "folds" if summary.scheme == "kfold" else "holdouts"
    return f"{count} {'fresh ' if fresh else ''}{kind}"


def format_confirmation(summary: Confirmation, search_best: int | None = None) -> list[str]:
    """Lines on a confirmation: the race's ranking, the pick, the figure to quote, the yardstick."""
    metric = summary.metric
    leader = summary.pick
    search_best = summary.search_best if summary.search_best is not None else search_best
    what = (
        "every row validates once" if summary.scheme == "kfold" else "validation rows from the search's training rows"
    )
    lines = [f"  confirmed on {_resamples(summary, summary.resamples)} ({what}; mean ± sd of {label(metric)}):"]
    for c in summary.ranking:
        mark = "*" if c is leader else " "
        state = f"dropped after {c.n}" if c.dropped else f"n={c.n}"
        tags = "; baseline" if c.baseline else ""
        lines.append(
            f"   {mark} trial {c.trial:>3}  {format_confirmed(c, metric)}  ({state}{tags}; search value "
            f"{format_value(c.search_value, metric)})  {format_params(c.params)}"
        )
    if summary.trimmed:
        lines.append(
            f"  ({summary.trimmed} more leaders left out: confirming them would take longer than the search did; "
            "--confirm K names how many to confirm)"
        )
    if search_best is not None and leader.trial != search_best:
        lines.append(
            f"  the pick is trial {leader.trial}: on the same resamples it scored better than the search's "
            f"best, trial {search_best}{_by(summary.versus.get('search_best'))}; confirmation disagrees with the search"
        )
    else:
        lines.append(f"  the pick is trial {leader.trial}: confirmation agrees with the search")
    figure = summary.estimate
    if figure is not None and figure.mean is not None:
        lines.append(
            f"  quote: {label(metric)} {format_interval(figure, metric)} on "
            f"{_resamples(summary, figure.n, fresh=True)} the choice never saw: what trial {figure.trial} "
            "scores on rows it did not train on"
        )
    lines += _yardstick_lines(summary.yardstick, metric)
    return lines


def _by(lead: Lead | None) -> str:
    """`` (by 0.0015, 95% interval -0.004 to +0.007: within noise)``."""
    if lead is None or lead.low is None:
        return ""
    noise = "within noise" if lead.low <= 0 else "beyond noise"
    return f" (by {lead.lead:.4g}, 95% interval {lead.low:+.4g} to {lead.high:+.4g}: {noise})"


def _yardstick_lines(stick: Yardstick | None, metric: str) -> list[str]:
    if stick is None:
        return []
    if stick.error:
        return [f"  yardstick: {stick.name} skipped: {stick.error}"]
    verdict = "leads" if stick.lead > 0 else "trails"
    interval = ""
    if stick.lead_low is not None:
        interval = f" (95% interval {stick.lead_low:+.4g} to {stick.lead_high:+.4g})"
    return [
        f"  yardstick: {stick.name} (scikit-learn's defaults) {format_value(stick.mean, metric)} on the same "
        f"{stick.n} resamples; the pick {verdict} it by {abs(stick.lead):.4g}{interval}"
    ]


def format_storage_time(spent: StorageTime, trials: int) -> str:
    """One line: the storage calls this run waited on, their time, and their share of the workers' time."""
    per_trial = f" ({spent.calls / trials:.1f} a trial)" if trials else ""
    return (
        f"  storage:   {spent.calls:,} calls{per_trial} waited {format_seconds(spent.seconds)}, "
        f"{spent.share:.0%} of the workers' time"
    )


def _states(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    running, waiting = counts.get("RUNNING"), counts.get("WAITING")
    return (
        f"{total} trials: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed"
        + (f", {running} running" if running else "")
        + (f", {waiting} waiting" if waiting else "")
    )


def _budget(summary: RunSummary) -> str:
    if not summary.total_trials:
        return ""
    left = summary.study_states.get("WAITING", 0)
    return f" (a budget of {summary.total_trials}: {f'{left} to run' if left else 'spent'})"


def budget_spent(summary: RunSummary) -> bool:
    """Whether the study's budget has no trial left to run (continuing it would do nothing)."""
    return bool(summary.total_trials) and not summary.study_states.get("WAITING", 0)


def _wall(summary: RunSummary) -> str:
    search = summary.search_seconds if summary.search_seconds is not None else summary.wall_seconds
    confirming = summary.wall_seconds - search
    if confirming <= 0.05:
        return format_seconds(summary.wall_seconds)
    return f"{format_seconds(summary.wall_seconds)} (search {format_seconds(search)}, confirmation {format_seconds(confirming)})"


def _optimistic(summary: RunSummary) -> bool:
    """Whether to warn that the best search value is optimistic: always before confirmation (the best of many
    noisy figures is, on average); after it, only when the search value is better than the quote."""
    quote = summary.confirmation.quote if summary.confirmation else None
    if quote is None or quote.mean is None or summary.best_value is None:
        return True
    if summary.confirmation.direction == "minimize":
        return summary.best_value < quote.mean
    return summary.best_value > quote.mean


def format_summary(summary: RunSummary, continue_command: str, note: str | None = None) -> str:
    metric = summary.metric
    lines = [
        "",
        f"study {summary.study!r} in {summary.storage}",
        f"  this run:  {_states(summary.run_states)} in {_wall(summary)}",
        f"  the study: {_states(summary.study_states)}{_budget(summary)}",
    ]
    if summary.storage_time is not None and summary.storage_time.calls:
        lines.append(format_storage_time(summary.storage_time, sum(summary.run_states.values())))
        if summary.storage.startswith("sqlite") and summary.storage_time.share >= ADVISE_SHARE:
            lines.append(
                "  advice:    trials this short wait on SQLite (one writer at a time, a transaction per call); a new "
                "study in a journal file waits less: --storage journal:///studies/NAME.log (docs/storages.md)"
            )
    if summary.best_number is None and summary.pick and summary.study_states.get("COMPLETE"):
        lines.append(f"  no completed trial meets the constraint {summary.pick}")
    elif summary.best_number is None:
        lines.append("  no trial has completed yet")
    else:
        lines.append(
            f"  best by search value{f' among the trials with {summary.pick}' if summary.pick else ''}: "
            f"trial {summary.best_number}, {label(metric)} "
            f"{format_value(summary.best_value, metric)}"
        )
        lines.append(f"        {format_params(summary.best_params)}")
    if summary.confirmation:
        lines += format_confirmation(summary.confirmation, summary.best_number)
    if note:
        lines.append(note)
    small = summary.train_samples is not None and summary.train_samples < SMALL_DATA
    if summary.best_number is not None and small and _optimistic(summary):
        advice = (
            "quote the confirmation's figure"
            if summary.confirmation
            else "confirm the leaders on fresh resamples: search confirm --study " + shlex.quote(summary.study)
        )
        lines.append(
            f"note: with {summary.train_samples:,} training samples (under {SMALL_DATA:,}) the best search value "
            f"is optimistic (it is the best of many noisy figures); {advice}"
        )
    if budget_spent(summary):
        lines.append(f"its budget of {summary.total_trials} trials is spent: run a new study for more")
    else:
        lines.append(f"continue it with: {continue_command}")
    return "\n".join(lines)
