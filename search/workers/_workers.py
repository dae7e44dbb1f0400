"""Several worker processes on this machine sharing one study's trials (``--jobs N``)."""

from __future__ import annotations

import dataclasses
import os
import time

import torch.multiprocessing

from objectives import resolve_device
from search._errors import RunStopped, SearchError
from search.storages import release_connections
from search.storages._clock import StorageTime
from search.study._config import RunConfig
from search.study._fusion import measured, remember
from search.study._record import RUN_ATTR
from search.study._run import new_run_attrs, prepare, run_study
from search.study._signals import Interrupted
from search.study._summary import RunSummary, summarize_safely
from search.workers._processes import (
    JOBS_ENV,
    Tickets,
    parent_works,
    run_processes,
    worker_process,
)


def worker_main(
    config: RunConfig, index: int, splits, run_attrs: dict, times, tickets, sizes: dict, threads: int, gpu: str | None
) -> None:
    """One worker process: its threads, its GPU, its share of the trials; its storage time goes to ``times``.
    ``sizes``: the group sizes its parent measured (`search.study._fusion.remember`)."""
    remember(sizes)
    with worker_process(index, threads, gpu, on_interrupt=lambda exc: tickets.cut_short(getattr(exc, "cut_short", 0))):
        times.put(_run_share(config, index, splits, run_attrs, tickets))


def _run_share(config: RunConfig, index: int, splits, run_attrs, tickets) -> StorageTime | None:
    """One worker's share of the run's trials, its lines labelled ``w{index}``; the storage time it waited."""
    from search.study._progress import Progress

    progress = Progress(config.n_trials, label=f"w{index}", metric=config.metric_spec.name)
    on_trial = None if config.quiet else progress.trial
    summary = run_study(config, on_trial=on_trial, worker=index, splits=splits, run_attrs=run_attrs, tickets=tickets)
    return summary.storage_time


def run_workers(config: RunConfig, on_note=None) -> RunSummary:
    """Start ``config.jobs`` worker processes on the study and wait for them."""
    # Every check, the study's creation and the data loading happen once, here. The
    # workers get the data set through shared memory: one copy on the machine, and no
    # worker imports torchvision (about 160 MB each).
    # The parent keeps the data on the CPU (each worker moves it to its own device); an
    # asked-for device this machine lacks is refused here, once.
    resolve_device(config.device)
    run_attrs = new_run_attrs(config)
    prepared = prepare(dataclasses.replace(config, device="cpu"), on_note=on_note)
    objective, url, study = prepared.objective, prepared.url, prepared.study
    # The study exists now, with its record: the workers take everything from it.
    chosen = config.explicit is None or "jobs" in config.explicit or bool(os.environ.get(JOBS_ENV))
    config = dataclasses.replace(prepared.config, device=config.device, explicit=frozenset())
    if not chosen:
        config = _fused_workers(config, objective)
    run_attrs["jobs"] = config.jobs
    # Workers never touch the test split: they get it empty.
    splits = dataclasses.replace(
        objective.splits, test_x=objective.splits.test_x[:0], test_y=objective.splits.test_y[:0]
    )
    for name in ("train_x", "train_y", "val_x", "val_y"):
        getattr(splits, name).share_memory_()
    started = time.perf_counter()
    # The workers take the run's trials one at a time from a shared count: one that starts late does fewer.
    tickets = Tickets(config.n_trials)
    shares = [
        (index, dataclasses.replace(config, jobs=1))
        for index in range(min(config.jobs, config.n_trials or config.jobs))
    ]
    # The workers open their own connections; idle ones held here would only count
    # against the database's connection limit while they work.
    release_connections(prepared.storage)
    times = torch.multiprocessing.get_context("spawn").SimpleQueue()
    own = None
    if parent_works(config) and shares:
        # This process is worker 0: its first trial starts while the others are still starting up.
        (index, mine_share), shares = shares[0], shares[1:]

        def own() -> None:
            times.put(_run_share(mine_share, index, splits, run_attrs, tickets))

    sizes = measured()  # the group sizes measured here (`_fused_workers`): the workers need not again
    try:
        run_processes(
            config,
            worker_main,
            [(share, index, splits, run_attrs, times, tickets, sizes) for index, share in shares],
            own=own,
        )
    except KeyboardInterrupt as exc:  # the trials every worker finished, and those the interrupt cut short
        raise Interrupted(tickets.done.value, tickets.cut.value + getattr(exc, "cut_short", 0)) from None
    except SearchError as exc:  # a worker stopped with an error: what the others stored is the run's
        raise RunStopped(exc.reason if isinstance(exc, RunStopped) else str(exc), tickets.done.value) from exc
    # This run's trials are those its workers made (other machines may share the study).
    mine = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished() and (t.user_attrs.get(RUN_ATTR) or {}).get("id") == run_attrs["id"]
    ]
    summary = summarize_safely(
        study, url, time.perf_counter() - started, mine, splits.train_x.shape[0], config.confirm.pick
    )
    return dataclasses.replace(summary, storage_time=_total(times))


def _fused_workers(config: RunConfig, objective) -> RunConfig:
    """Fewer worker processes where trials train together and the run is too short to pay for starting them all
    (`search.study._fusion.workers_for`); for a run whose workers the user left to it."""
    from search.study._fusion import workers_for
    from search.study._open import model_defaults

    trials = config.total_trials or config.n_trials
    workers = workers_for(config.jobs, config.fuse, objective, model_defaults(config.model), trials)
    if workers == config.jobs:
        return config
    return dataclasses.replace(config, jobs=workers)  # each keeps its one thread: tiny fused steps run no faster on two


def _total(times) -> StorageTime | None:
    """The workers' storage times added up (None when no worker finished to report one)."""
    total = None
    while not times.empty():
        one = times.get()
        total = one if total is None else total + one
    return total
