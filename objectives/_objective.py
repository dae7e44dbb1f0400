"""The Optuna objective: sample a configuration, train the MLP, report every epoch, prune."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable

import optuna
import torch

from objectives._checkpoints import Checkpoints, Resume
from objectives._costs import measure_costs
from objectives._devices import resolve_device
from objectives._errors import Interrupted
from objectives._members import Member
from objectives._space import SearchSpace
from objectives._train import EpochResult, train_epochs
from objectives.data import SEARCH, DataConfig, Resample, Splits, load_splits
from objectives.models import ModelSpec, build_model, count_parameters


def peak_rss_mb() -> float | None:
    """This process's peak resident memory so far, in MB (None where the OS does not say).

    On Linux it is VmHWM: getrusage's ru_maxrss survives fork and exec, so a spawned
    worker would report its parent's peak as its own.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)  # bytes on macOS, KiB on Linux


def _process_generator(device: torch.device) -> torch.Generator:
    """A copy of the generator dropout draws from on ``device``, in its present state."""
    if device.type == "cuda":
        return torch.Generator(device).set_state(torch.cuda.get_rng_state(device))
    return torch.Generator().set_state(torch.get_rng_state())


def _set_process_generator(device: torch.device, generator: torch.Generator) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(generator.get_state(), device)
    else:
        torch.set_rng_state(generator.get_state())


class Objective:
    """Trains the space's model function on each trial's configuration, scored by ``metric``.

    The data set is loaded once, here, and moved to the device once; every trial then
    batches from those tensors. Each trial reports its validation figure after every
    epoch (step = epoch, from 1) and asks the pruner whether to go on.
    """

    def __init__(
        self,
        space: SearchSpace,
        data: DataConfig,
        device: str = "auto",
        seed: int = 0,
        on_epoch: Callable[[optuna.Trial, EpochResult], None] | None = None,
        splits: Splits | None = None,
        stop: Callable[[], bool] | None = None,
        run_attrs: dict | None = None,
        seed_per_trial: bool = True,
        metric: str = "accuracy",
        resample: Resample = SEARCH,
        costs: tuple[str, ...] = (),
        checkpoints: Checkpoints | None = None,
    ):
        """``splits``: the data already loaded (a worker gets its parent's, in shared memory).

        ``stop`` is asked between training steps; when it says yes the trial ends with
        `Interrupted`. ``run_attrs`` is recorded on every trial as the ``run`` user attribute
        (which run made it: sampler, pruner, host). ``seed_per_trial``: each trial trains
        with ``seed + trial.number`` (a search); False: every trial with ``seed`` (a
        confirmation, where candidates are compared on the same resample and seed).
        ``resample``: which rows validate (the search's own split by default). ``costs``
        (`objectives.COSTS`): a multi-objective study's further objectives; each trial then returns
        its metric and each cost, and reports no epochs (Optuna prunes single-objective studies only).
        ``checkpoints``: where a trial's state is saved as it trains, and found again when a dead trial re-runs.
        """
        self.space = space
        self.device = resolve_device(device)
        self.seed = seed
        self.splits: Splits = (splits if splits is not None else load_splits(data, resample)).to(self.device)
        self.metric = metric
        self.on_epoch = on_epoch
        self.stop = stop
        self.run_attrs = run_attrs
        self.seed_per_trial = seed_per_trial
        self.costs = costs
        self.checkpoints = checkpoints

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        return self.train(self.begin(trial))

    def train(self, member: Member) -> float | tuple[float, ...]:
        """Train a member begun by `begin`, alone; its value (and costs)."""
        # Dropout draws from the process's generator: as it was when this member's model was built, though
        # other trials were begun since (a worker that begins several before it trains them).
        _set_process_generator(self.device, member.dropout)
        try:
            resume = member.resume.state if member.resume else None
            for result in train_epochs(
                member.model, self.splits, member.config, member.seed, self.stop, self.metric, resume=resume
            ):
                if not self.hear(member, result):
                    break
            return self.finish(member)
        except (optuna.TrialPruned, RuntimeError):
            self.dropped(member)
            raise

    def dropped(self, member: Member) -> None:
        """Member ended for good (pruned, failed): nothing will resume it, so its checkpoint goes."""
        if self.checkpoints is not None:
            self.checkpoints.dropped(member.trial)

    def begin(self, trial: optuna.Trial, resumable: bool = True) -> Member:
        """The trial's configuration sampled, its model built from its seed and recorded: all but the training.
        ``resumable``: it goes on from a dead trial's checkpoint where it has one (False: a trial made up to
        measure, never stored)."""
        if self.stop is not None and self.stop():
            raise Interrupted
        train_config, model_params = self.space.suggest(trial)
        resume = self.checkpoints.resume(trial) if self.checkpoints is not None and resumable else None
        seed = self._seed(trial, resume)
        torch.manual_seed(seed)
        spec = ModelSpec(self.space.model, model_params)
        model = build_model(spec, self.splits.input_shape, self.splits.num_outputs).to(self.device)
        # Dropout's masks come from the process's generator, as it stands now: a member trained with others
        # draws them from its own copy (`objectives._members`).
        dropout = _process_generator(self.device)
        trial.set_user_attr("config", {**dataclasses.asdict(train_config), "model": spec.to_dict()})
        trial.set_user_attr("n_params", count_parameters(model))
        trial.set_user_attr("device", str(self.device))
        trial.set_user_attr("seed", seed)
        if self.run_attrs:
            trial.set_user_attr("run", self.run_attrs)
        if resume is not None:
            self._carry_over(trial, resume, report=not self.costs)
        return Member(trial, train_config, spec, model, seed, dropout, resume)

    def _seed(self, trial: optuna.Trial, resume: Resume | None) -> int:
        if resume is not None:
            return resume.seed  # the dead trial's: the same data order and initial weights, so the same ending
        return self.seed + trial.number if self.seed_per_trial else self.seed

    @staticmethod
    def _carry_over(trial: optuna.Trial, resume: Resume, report: bool) -> None:
        """The dead trial's history, so that the pruner and the record see the whole run."""
        trial.set_user_attr("resumed_at_epoch", resume.epoch)
        trial.set_user_attr("resumed_from_trial", resume.source)
        for epoch, value in sorted(resume.reports.items()) if report else ():
            trial.report(value, epoch)

    def hear(self, member: Member, result: EpochResult) -> bool:
        """Member's epoch ``result`` reported to its trial; False: it trains no more (its loss diverged).
        Raises ``optuna.TrialPruned`` when its pruner says stop."""
        member.samples += result.samples
        member.train_seconds += result.seconds
        member.last = result
        trial = member.trial
        if self.on_epoch is not None:
            self.on_epoch(trial, result)
        if result.diverged:
            # A diverged network scores what it scores (about nothing): the trial
            # completes with that value, so the sampler learns the region is bad.
            trial.set_user_attr("diverged", result.diverged)
            return False
        if not self.costs:  # Optuna takes no reports from a multi-objective trial
            trial.report(result.value, result.epoch)
            if result.epoch < member.config.epochs and trial.should_prune():
                self._record(member)
                raise optuna.TrialPruned(f"pruned at epoch {result.epoch}")
        if self.checkpoints is not None and result.epoch < member.config.epochs:
            self.checkpoints.offer(trial, result.epoch, member.seed, result.snapshot)
        return True

    def finish(self, member: Member) -> float | tuple[float, ...]:
        """Member's value (and costs) once its training ended, its figures recorded; its model holds its weights."""
        result, trial = member.last, member.trial
        if result is None:  # resumed from a checkpoint of its last epoch: nothing was left to train
            raise RuntimeError("the checkpoint it resumed from was taken after its last epoch")
        # Recorded once, when the trial ends: per epoch it would be six more round trips
        # to a remote database each epoch.
        self._record(member)
        if self.checkpoints is not None:
            self.checkpoints.finished(trial, member.model, result.value)
        if not self.costs:
            return result.value
        costs = measure_costs(member.model, self.splits, self.costs)
        trial.set_user_attr("costs", costs)  # by name, for `search trials` and `--pick`
        return (result.value, *costs.values())

    @staticmethod
    def _record(member: Member) -> None:
        trial, result = member.trial, member.last
        trial.set_user_attr("epochs_run", result.epoch)
        trial.set_user_attr("val_loss", result.val_loss)
        trial.set_user_attr("train_loss", result.train_loss)
        trial.set_user_attr("seconds", round(time.perf_counter() - member.started, 3))
        trial.set_user_attr("samples_per_second", round(member.samples / max(member.train_seconds, 1e-9), 1))
        trial.set_user_attr("peak_rss_mb", peak_rss_mb())
