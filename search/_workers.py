"""Several worker processes on this machine sharing one study.

Processes, not threads: Optuna's ``n_jobs`` means threads, and training holds the GIL
between kernels. Each worker gets an equal share of the cores (torch threads) and, on a
machine with several GPUs, a GPU of its own.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time

import torch
import torch.multiprocessing

from objectives import resolve_device

from search._config import RunConfig
from search._errors import SearchError
from search._record import RUN_ATTR, RunSummary, StorageTime
from search._signals import INTERRUPTS
from search._storage import release_connections
from search._study import new_run_attrs, prepare, run_study, summarize_safely

EXIT_INTERRUPTED = 130


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _gpus() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d for d in visible.split(",") if d.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def gpu_for(index: int, gpus: list[str]) -> str | None:
    """The GPU a worker gets: round-robin over several; with one or none, the worker is left as it is."""
    return gpus[index % len(gpus)] if len(gpus) > 1 else None


def split_trials(n_trials: int | None, jobs: int) -> list[int | None]:
    """``n_trials`` shared as evenly as possible; the total is exact."""
    if n_trials is None:
        return [None] * jobs
    return [n_trials // jobs + (1 if i < n_trials % jobs else 0) for i in range(jobs)]


def worker_main(config: RunConfig, index: int, splits, run_attrs: dict, times, threads: int, gpu: str | None) -> None:
    """One worker process: its threads, its GPU, its share of the trials; its storage time goes to ``times``."""
    _worker_setup(index, threads, gpu)
    from search._progress import Progress

    progress = Progress(config.n_trials, label=f"w{index}")
    try:
        summary = run_study(config, on_trial=progress.trial, worker=index, splits=splits, run_attrs=run_attrs)
        times.put(summary.storage_time)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except SearchError as exc:
        print(f"search: error: worker {index}: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


def run_workers(config: RunConfig) -> RunSummary:
    """Start ``config.jobs`` worker processes on the study and wait for them."""
    # Every check, the study's creation and the data loading happen once, here. The
    # workers get the data set through shared memory: one copy on the machine, and no
    # worker imports torchvision (about 160 MB each).
    # The parent keeps the data on the CPU (each worker moves it to its own device); an
    # asked-for device this machine lacks is refused here, once.
    resolve_device(config.device)
    run_attrs = new_run_attrs(config)
    prepared = prepare(dataclasses.replace(config, device="cpu"))
    objective, url, study = prepared.objective, prepared.url, prepared.study
    # The study exists now, with its record: the workers take everything from it.
    config = dataclasses.replace(prepared.config, device=config.device, explicit=frozenset())
    # Workers never touch the test split: they get it empty.
    splits = dataclasses.replace(objective.splits, test_x=objective.splits.test_x[:0], test_y=objective.splits.test_y[:0])
    for name in ("train_x", "train_y", "val_x", "val_y"):
        getattr(splits, name).share_memory_()
    started = time.perf_counter()
    shares = [(index, dataclasses.replace(config, n_trials=n, jobs=1))
              for index, n in enumerate(split_trials(config.n_trials, config.jobs)) if n != 0]
    # The workers open their own connections; idle ones held here would only count
    # against the database's connection limit while they work.
    release_connections(prepared.storage)
    times = torch.multiprocessing.get_context("spawn").SimpleQueue()
    run_processes(config, worker_main, [(share, index, splits, run_attrs, times) for index, share in shares])
    # This run's trials are those its workers made (other machines may share the study).
    mine = [t for t in study.get_trials(deepcopy=False)
            if t.state.is_finished() and (t.user_attrs.get(RUN_ATTR) or {}).get("id") == run_attrs["id"]]
    summary = summarize_safely(study, url, time.perf_counter() - started, mine, splits.train_x.shape[0])
    return dataclasses.replace(summary, storage_time=_total(times))


def _total(times) -> StorageTime | None:
    """The workers' storage times added up (None when no worker finished to report one)."""
    total = None
    while not times.empty():
        one = times.get()
        total = one if total is None else total + one
    return total


def run_processes(config: RunConfig, target, per_worker: list[tuple]) -> None:
    """Run ``target(*args, threads, gpu)`` in one spawned process per ``args`` and wait for them all.

    Each gets an equal share of the cores and, on a machine with several GPUs, its own. A
    SIGTERM to this process is passed on to them; Ctrl-C reaches them from the terminal.
    """
    gpus = _gpus() if config.device in ("auto", "cuda") else []
    threads = max(1, available_cores() // max(1, len(per_worker)))
    context = torch.multiprocessing.get_context("spawn")  # pickles tensors as shared-memory handles
    workers = []
    for number, args in enumerate(per_worker):
        process = context.Process(target=target, args=(*args, threads, gpu_for(number, gpus)), name=f"search-worker-{number}")
        process.start()
        workers.append(process)

    def forward_sigterm(signum, frame):
        for p in workers:
            if p.is_alive():
                p.terminate()  # SIGTERM: each worker fails its running trial and exits
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, forward_sigterm)
    try:
        interrupted = _join(workers)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if interrupted:
        raise KeyboardInterrupt
    failed = [p.name for p in workers if p.exitcode not in (0, None)]
    if failed:
        raise SearchError(f"{len(failed)} of {len(workers)} workers stopped with an error (see above)")


def _worker_setup(index: int, threads: int, gpu: str | None) -> None:
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    import torch

    from search._cli import quiet_optuna

    INTERRUPTS.install()
    quiet_optuna()
    torch.set_num_threads(threads)


def confirm_worker_main(config: RunConfig, index: int, threads: int, gpu: str | None) -> None:
    """One confirmation worker: it takes queued retrains until none is left."""
    _worker_setup(index, threads, gpu)
    from search._progress import ConfirmProgress
    from search._study import drain_confirmation

    try:
        drain_confirmation(config, on_trial=ConfirmProgress(label=f"w{index}").trial)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except SearchError as exc:
        print(f"search: error: worker {index}: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


def _join(workers) -> bool:
    """Wait for every worker; True when interrupted (the workers get the same Ctrl-C)."""
    interrupted = False
    while any(p.is_alive() for p in workers):
        try:
            for p in workers:
                p.join()
        except KeyboardInterrupt:
            interrupted = True  # the terminal sent SIGINT to the workers too; let them finish failing their trials
    return interrupted or any(p.exitcode == EXIT_INTERRUPTED for p in workers)
