"""What a running study prints: a live epoch line on a terminal, one line per finished trial or retrain."""

from __future__ import annotations

import sys
import time
from typing import IO, TYPE_CHECKING, Any

from optuna.trial import FrozenTrial, TrialState

from search.study._format import SHORT, format_params, format_seconds, format_value

if TYPE_CHECKING:
    import optuna

    from objectives import EpochResult


class EpochLine:
    """Progress of one training run (`search train`): a live line on a terminal, else a line per epoch."""

    def __init__(self, epochs: int, stream: IO[str], metric: str = "accuracy", prefix: str = "test"):
        self.epochs, self.stream, self.metric = epochs, stream, metric
        self.name = f"{prefix}_{SHORT.get(metric, metric).removeprefix('val_')}"
        self.live = stream.isatty()

    def epoch(self, result: EpochResult) -> None:
        scored = f"  {self.name} {format_value(result.value, self.metric)}" if result.value is not None else ""
        line = (
            f"  epoch {result.epoch}/{self.epochs}{scored}  "
            f"train_loss {result.train_loss:.4g}  {result.samples / max(result.seconds, 1e-9):,.0f} samples/s"
        )
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
    """Prints trial lines to ``stream``; on a terminal, also one live line per epoch with the time left."""

    def __init__(
        self,
        n_trials: int | None,
        stream: IO[str] | None = None,
        label: str = "",
        metric: str = "accuracy",
        timeout: float | None = None,
        confirm: tuple[int, int] | None = None,
        clock=time.monotonic,
    ):
        self.stream = stream or sys.stdout
        self.n_trials, self.timeout = n_trials, timeout
        self.metric = metric
        self.done = 0
        self.clock = clock
        self.started = clock()
        self.seconds: list[float] = []  # each finished trial's own time, this process
        self.confirm = confirm  # (candidates, resamples) when given; None: at most the search's time (the default)
        self.label = f"{label} " if label else ""
        # Several workers share one terminal: only a lone worker draws the live epoch line.
        self.live = self.stream.isatty() and not label
        self._read_metric = False

    def _metric_of(self, study: optuna.Study) -> str:
        """The study's own metric, read once: a run that continues a study without naming it was
        configured with the default, and learns the recorded one only from the storage."""
        if not self._read_metric and study is not None:
            from search.study._record import STUDY_ATTR, made_metric

            made = study.user_attrs.get(STUDY_ATTR)
            self.metric = made_metric(made).name if made else self.metric
            self._read_metric = True
        return self.metric

    def epoch(self, trial: optuna.Trial, result: EpochResult) -> None:
        if self.live:
            self._metric_of(trial.study)
            attrs = trial.user_attrs
            epochs = attrs.get("config", {}).get("epochs", "?")
            together = attrs.get("trained_with", 1)  # trials trained as one model (`--fuse`)
            group = f" (one of {together} training together)" if together > 1 else ""
            left = f"  {self.time_left()}" if self.done else ""
            self.stream.write(
                f"\r  trial {trial.number}{group} epoch {result.epoch}/{epochs}  {SHORT.get(self.metric, self.metric)} "
                f"{format_value(result.value, self.metric)}  {result.samples / max(result.seconds, 1e-9):,.0f} samples/s{left}\x1b[K"
            )
            self.stream.flush()

    def time_left(self) -> str:
        """``search ~1m20s left, then confirmation ~50s``: from this run's trials so far, the trials still to run
        and the timeout; confirmation costs at most the search's own time unless K,R were given."""
        elapsed = self.clock() - self.started
        per_trial = elapsed / max(1, self.done)
        left = per_trial * (self.n_trials - self.done) if self.n_trials else float("inf")
        if self.timeout is not None:
            left = min(left, max(0.0, self.timeout - elapsed))
        if left == float("inf"):
            return f"{format_seconds(elapsed)} so far"
        search = elapsed + left
        mean = sum(self.seconds) / len(self.seconds) if self.seconds else per_trial
        confirming = search if self.confirm is None else (self.confirm[0] + 2) * self.confirm[1] * mean
        text = f"search ~{format_seconds(left)} left"
        return text + (f", then confirmation ~{format_seconds(confirming)}" if self.confirm != (0, 0) else "")

    def trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._metric_of(study)
        self.done += 1
        if trial.duration:
            self.seconds.append(trial.duration.total_seconds())
        of = f"/{self.n_trials}" if self.n_trials else ""
        attrs = trial.user_attrs
        planned = attrs.get("config", {}).get("epochs", "?")
        value = trial.values[0] if trial.values else _last_intermediate(trial)
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        note = ""
        if "diverged" in attrs:
            note = f"  diverged: {attrs['diverged']}"
        elif trial.state == TrialState.FAIL:
            note = f"  failed: {attrs.get('error', 'no reason recorded')}"
        line = (
            f"[{self.label}{self.done}{of}] trial {trial.number:>3}  {trial.state.name:<8}  {SHORT.get(self.metric, self.metric)} "
            f"{format_value(value, self.metric) if value is not None else '  -   '}  "
            f"epochs {attrs.get('epochs_run', 0)}/{planned}  {format_seconds(seconds):>6}  {format_params(trial.params)}{note}"
        )
        prefix = "\r\x1b[K" if self.live else ""
        print(prefix + line, file=self.stream, flush=True)


class ConfirmProgress:
    """One line per finished confirmation retrain."""

    def __init__(
        self, stream: IO[str] | None = None, label: str = "", metric: str = "accuracy", total: int | None = None
    ):
        self.stream = stream or sys.stdout
        self.label = f"{label} " if label else ""
        self.metric, self.total = metric, total
        self.done = 0

    def trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        attrs = trial.user_attrs
        if not isinstance(attrs.get("resample"), str) or trial.state == TrialState.PRUNED:
            return  # a worker that found the queue empty, or a copy another process ran: nothing to tell
        self.done += 1
        value = format_value(trial.values[0], self.metric) if trial.values else "  -   "
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        note = f"  failed: {attrs.get('error', 'interrupted')}" if trial.state == TrialState.FAIL else ""
        print(
            f"[{self.label}confirm {self.done}{f'/{self.total}' if self.total else ''}] trial {attrs['source_trial']:>3} "
            f"{describe_resample(attrs['resample'])} ({attrs.get('role', 'race')})  {trial.state.name:<8}  "
            f"{SHORT.get(self.metric, self.metric)} {value}  epochs {attrs.get('epochs_run', 0)}  {format_seconds(seconds):>6}{note}",
            file=self.stream,
            flush=True,
        )


def describe_resample(key: str) -> str:
    """``fold 3/5`` or ``holdout 2`` for a resample key."""
    parts = key.split("/")
    if parts[0] == "kfold" and len(parts) == 4:
        return f"fold {int(parts[3]) + 1}/{parts[1]}"
    return f"{parts[0]} {parts[-1][:6]}"


def _last_intermediate(trial: FrozenTrial) -> float | None:
    if not trial.intermediate_values:
        return None
    return trial.intermediate_values[max(trial.intermediate_values)]


class Reporter:
    """What a run tells as it goes. Every method hears and does nothing: a quiet run."""

    def note(self, text: str) -> None:
        """Something the user should know about the data (a constant column left out, say)."""

    def trial(self, study: Any, trial: Any) -> None:
        """A search trial finished (this process's, with one worker)."""

    def epoch(self, trial: Any, result: Any) -> None:
        """A search trial's epoch ended (with one worker)."""

    def searched(self, summary: Any) -> None:
        """The search ended (its summary: the study's metric, its best trial); the confirmation comes next."""

    def plan(self, plan: Any) -> None:
        """The confirmation's plan: its candidates and resamples."""

    def retrain(self, study: Any, trial: Any) -> None:
        """A confirmation retrain finished."""

    def waiting(self, running: int) -> None:
        """The confirmation waits for ``running`` retrains that run in other processes."""

    def search_waiting(self, running: int, silent: int) -> None:
        """The confirmation waits for ``running`` search trials (``silent`` of them beat no heartbeat)."""

    def nothing_to_confirm(self, reason: str) -> None:
        """The search left nothing to confirm (no completed trial, or every one diverged)."""


class LiveReporter(Reporter):
    """The command line's reporter: a line per trial (a live one on a terminal), the plan, and each wait."""

    def __init__(self, config: Any, progress: Progress | None = None):
        self.progress = progress or Progress(config.n_trials, metric=config.metric_spec.name)
        self.metric = config.metric_spec.name
        # With several workers this process is worker 0, and its lines say so.
        self.label = "w0" if (config.jobs or 1) > 1 else ""
        self.retrains: ConfirmProgress | None = None
        self.summary_note: str | None = None

    def note(self, text: str) -> None:
        print(f"note: {text}", file=sys.stderr, flush=True)

    def trial(self, study, trial) -> None:
        self.progress.trial(study, trial)

    def epoch(self, trial, result) -> None:
        self.progress.epoch(trial, result)

    def searched(self, summary) -> None:
        self.metric = summary.metric

    def plan(self, plan) -> None:
        baseline = f" and the baseline (trial {plan.baseline})" if plan.baseline in plan.candidates[1:] else ""
        leaders = [n for n in plan.candidates if n != plan.baseline or n == plan.candidates[0]]
        kind = "folds" if plan.scheme == "kfold" else "holdouts"
        print(
            f"confirming trial{'s' if len(leaders) > 1 else ''} {', '.join(map(str, leaders))}{baseline} on "
            f"{len(plan.race)} {kind} the search never validated on, then the pick on {len(plan.estimate)} fresh {kind}"
            f" (plan {plan.id}; e.g. {describe_resample(plan.race[0])})...",
            flush=True,
        )

    def retrain(self, study, trial) -> None:
        if self.retrains is None:
            self.retrains = ConfirmProgress(metric=self.metric, label=self.label)
        self.retrains.trial(study, trial)

    def waiting(self, running: int) -> None:
        print(
            f"waiting for {running} retrain{'s' if running != 1 else ''} running in another process "
            "(a dead worker's is taken over once its heartbeat stops)...",
            flush=True,
        )

    def search_waiting(self, running: int, silent: int) -> None:
        unjudged = (
            f"; {silent} of them send no heartbeat (--heartbeat 0), so a dead worker's is waited for until Ctrl-C"
            if silent
            else "; a dead worker's is failed once its heartbeat stops"
        )
        print(
            f"waiting for {running} search trial{'s' if running != 1 else ''} still running (another process or "
            f"machine) before choosing the leaders{unjudged}...",
            flush=True,
        )

    def nothing_to_confirm(self, reason: str) -> None:
        self.summary_note = f"confirmation: nothing to confirm: {reason}"
