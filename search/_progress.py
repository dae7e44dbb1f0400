"""What a running study prints: a live epoch line on a terminal, one line per finished trial."""

from __future__ import annotations

import sys
from typing import IO, TYPE_CHECKING

from optuna.trial import FrozenTrial, TrialState

from search._summary import RunSummary
from search.storages._clock import StorageTime

if TYPE_CHECKING:
    import optuna

    from objectives import EpochResult


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


class EpochLine:
    """Progress of one training run (`search train`): a live line on a terminal, else a line per epoch."""

    def __init__(self, epochs: int, stream: IO[str], metric: str = "val_acc"):
        self.epochs, self.stream, self.metric = epochs, stream, metric
        self.live = stream.isatty()

    def epoch(self, result: EpochResult) -> None:
        line = (f"  epoch {result.epoch}/{self.epochs}  {self.metric} {result.val_accuracy:.4f}  "
                f"train_loss {result.train_loss:.4g}  {result.samples / max(result.seconds, 1e-9):,.0f} samples/s")
        if self.live:
            self.stream.write(f"\r{line}\x1b[K")
            self.stream.flush()
        else:
            print(line, file=self.stream, flush=True)

    def done(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


class Progress:
    """Prints trial lines to ``stream``; on a terminal, also one live line per epoch."""

    def __init__(self, n_trials: int | None, stream: IO[str] | None = None, label: str = ""):
        self.stream = stream or sys.stdout
        self.n_trials = n_trials
        self.done = 0
        self.label = f"{label} " if label else ""
        # Several workers share one terminal: only a lone worker draws the live epoch line.
        self.live = self.stream.isatty() and not label

    def epoch(self, trial: optuna.Trial, result: EpochResult) -> None:
        if self.live:
            epochs = trial.user_attrs.get("config", {}).get("epochs", "?")
            self.stream.write(
                f"\r  trial {trial.number} epoch {result.epoch}/{epochs}  "
                f"val_acc {result.val_accuracy:.4f}  {result.samples / max(result.seconds, 1e-9):,.0f} samples/s\x1b[K"
            )
            self.stream.flush()

    def trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.done += 1
        of = f"/{self.n_trials}" if self.n_trials else ""
        attrs = trial.user_attrs
        planned = attrs.get("config", {}).get("epochs", "?")
        value = trial.value if trial.value is not None else _last_intermediate(trial)
        acc = f"{value:.4f}" if value is not None else "  -   "
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        note = ""
        if "diverged" in attrs:
            note = f"  diverged: {attrs['diverged']}"
        elif trial.state == TrialState.FAIL:
            note = f"  failed: {attrs.get('error', 'no reason recorded')}"
        line = (
            f"[{self.label}{self.done}{of}] trial {trial.number:>3}  {trial.state.name:<8}  val_acc {acc}  "
            f"epochs {attrs.get('epochs_run', 0)}/{planned}  {format_seconds(seconds):>6}  "
            f"{format_params(trial.params)}{note}"
        )
        prefix = "\r\x1b[K" if self.live else ""
        print(prefix + line, file=self.stream, flush=True)


class ConfirmProgress:
    """One line per finished confirmation retrain."""

    def __init__(self, stream: IO[str] | None = None, label: str = ""):
        self.stream = stream or sys.stdout
        self.label = f"{label} " if label else ""
        self.done = 0

    def trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.done += 1
        attrs = trial.user_attrs
        if "resample" not in attrs:
            return  # a worker that found the queue empty: nothing to tell
        value = f"{trial.value:.4f}" if trial.value is not None else "  -   "
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        note = f"  failed: {attrs.get('error', 'no reason recorded')}" if trial.state == TrialState.FAIL else ""
        print(f"[{self.label}confirm {self.done}] trial {attrs['source_trial']:>3} on resample {attrs['resample']}  "
              f"{trial.state.name:<8}  val_acc {value}  epochs {attrs.get('epochs_run', 0)}  {format_seconds(seconds):>6}{note}",
              file=self.stream, flush=True)


def format_confirmed(c: dict) -> str:
    """``0.8523 ± 0.0041`` (n >= 2), ``0.8500`` (one resample) or ``-``."""
    if c.get("mean") is None:
        return "-"
    return f"{c['mean']:.4f} ± {c['sd']:.4f}" if c.get("n", 0) >= 2 else f"{c['mean']:.4f}"


# Below this many training samples the run summary warns that the search value is optimistic.
SMALL_DATA = 20_000


def format_confirmation(summary: dict, search_best: int | None = None) -> list[str]:
    """Lines on a confirmation: the leader's mean ± sd over n resamples, and the others."""
    ranking = summary["ranking"]
    leader = ranking[0]
    lines = [f"  confirmed on {summary['resamples']} fresh resamples (mean ± sd of validation accuracy):"]
    for c in ranking:
        mark = "*" if c is leader else " "
        state = f"dropped after {c['n']}" if c["dropped"] else f"n={c['n']}"
        mean = format_confirmed(c)
        lines.append(f"   {mark} trial {c['trial']:>3}  {mean}  ({state}; search value {c['search_value']:.4f})  {format_params(c['params'])}")
    if search_best is not None and leader["trial"] != search_best:
        lines.append(f"  the pick is trial {leader['trial']} (confirmed), not the search's best trial {search_best}")
    else:
        lines.append(f"  the pick is trial {leader['trial']}: confirmation agrees with the search")
    return lines


def _last_intermediate(trial: FrozenTrial) -> float | None:
    if not trial.intermediate_values:
        return None
    return trial.intermediate_values[max(trial.intermediate_values)]


def format_storage_time(spent: StorageTime, trials: int) -> str:
    """One line: the storage calls this run waited on, their time, and their share of the workers' time."""
    per_trial = f" ({spent.calls / trials:.1f} a trial)" if trials else ""
    return (f"  storage:   {spent.calls:,} calls{per_trial} waited {format_seconds(spent.seconds)}, "
            f"{spent.share:.0%} of the workers' time")


def format_summary(summary: RunSummary, continue_command: str) -> str:
    def states(counts: dict[str, int]) -> str:
        total = sum(counts.values())
        return (
            f"{total} trials: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
            f"{counts['FAIL']} failed"
            + (f", {counts['RUNNING']} running" if counts.get("RUNNING") else "")
        )

    lines = [
        "",
        f"study {summary.study!r} in {summary.storage}",
        f"  this run:  {states(summary.run_states)} in {format_seconds(summary.wall_seconds)}",
        f"  the study: {states(summary.study_states)}",
    ]
    if summary.storage_time is not None and summary.storage_time.calls:
        lines.append(format_storage_time(summary.storage_time, sum(summary.run_states.values())))
    if summary.best_number is None:
        lines.append("  no trial has completed yet")
    else:
        lines.append(f"  best by search value: trial {summary.best_number}, validation accuracy {summary.best_value:.4f}")
        lines.append(f"        {format_params(summary.best_params)}")
    if summary.confirmation:
        lines += format_confirmation(summary.confirmation, summary.best_number)
    if summary.best_number is not None and summary.train_samples is not None and summary.train_samples < SMALL_DATA:
        advice = ("quote the confirmed mean" if summary.confirmation
                  else "confirm the leaders on fresh resamples: search confirm --study " + summary.study)
        lines.append(f"note: with {summary.train_samples:,} training samples (under {SMALL_DATA:,}) the best search value "
                     f"is optimistic (it is the maximum of noisy figures); {advice}")
    lines.append(f"continue it with: {continue_command}")
    return "\n".join(lines)
