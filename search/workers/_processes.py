"""Worker processes on this machine: how many cores and GPUs, and running one function per worker.

Processes, not threads: Optuna's ``n_jobs`` means threads, and training holds the GIL
between kernels. Each worker gets an equal share of the cores (torch threads) and, on a
machine with several GPUs, a GPU of its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import types

from search._errors import SearchError
from search.study._config import RunConfig
from search.study._logging import quiet_optuna
from search.study._signals import EXIT_INTERRUPTED, INTERRUPTS


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


JOBS_ENV, THREADS_ENV = "SEARCH_JOBS", "SEARCH_THREADS"


def planned(config: RunConfig) -> RunConfig:
    """``config`` with its worker processes and threads decided.

    By default one worker process per core, each with one torch thread: a thread waits for
    its slowest sibling at every operation, so two threads on a machine where another
    program holds a core run at the pace of the busy one, while two processes each keep
    their own pace (docs/speed.md has the figures). One process for a single trial or a GPU.
    """
    import dataclasses

    jobs = config.jobs
    if jobs is None:
        jobs = int(os.environ[JOBS_ENV]) if os.environ.get(JOBS_ENV) else _auto_jobs(config)
    if jobs > 1 and config.model.startswith("__main__:"):
        # Workers never run the user's script (see `_main_hidden`), so they cannot find a function it defines.
        print(
            f"search: one worker process: the model {config.model.split(':', 1)[1]} is defined in the script "
            "being run, which worker processes do not import; define it in a module of its own for several",
            file=sys.stderr,
            flush=True,
        )
        jobs = 1
    threads = config.threads or int(os.environ.get(THREADS_ENV) or 0) or max(1, available_cores() // jobs)
    return dataclasses.replace(config, jobs=max(1, jobs), threads=threads)


def _auto_jobs(config: RunConfig) -> int:
    from objectives import resolve_device

    if resolve_device(config.device).type != "cpu":
        gpus = _gpus() if config.device in ("auto", "cuda") else []
        return max(1, len(gpus))
    cores = available_cores()
    return max(1, min(cores, config.n_trials or cores))


def use_threads(config: RunConfig) -> None:
    """This process trains with ``config.threads`` torch threads."""
    import torch

    torch.set_num_threads(config.threads or available_cores())


class Tickets:
    """The trials a run still owes, shared by its worker processes: each takes one before each trial.

    They also count what the run's trials came to: those finished (any state Optuna recorded)
    and those an interrupt cut short, so the parent can say what is still owed.
    """

    def __init__(self, count: int | None):
        import torch.multiprocessing

        context = torch.multiprocessing.get_context("spawn")
        self.limited = count is not None
        self.count = context.Value("i", count or 0)
        self.done = context.Value("i", 0)
        self.cut = context.Value("i", 0)

    def take(self) -> bool:
        if not self.limited:
            return True
        with self.count.get_lock():
            if self.count.value <= 0:
                return False
            self.count.value -= 1
            return True

    def give_back(self) -> None:
        if not self.limited:
            return
        with self.count.get_lock():
            self.count.value += 1

    def finished(self) -> None:
        with self.done.get_lock():
            self.done.value += 1

    def cut_short(self, trials: int) -> None:
        with self.cut.get_lock():
            self.cut.value += trials


def run_processes(config: RunConfig, target, per_worker: list[tuple], own=None) -> None:
    """Run ``target(*args, threads, gpu)`` in one spawned process per ``args``; with ``own``, this process
    runs ``own()`` meanwhile (it is a worker too, and its work starts before the others have started up).

    Each gets an equal share of the cores and, on a machine with several GPUs, its own. A SIGTERM to
    this process is passed on to them; Ctrl-C reaches them from the terminal.
    """
    gpus = _gpus() if config.device in ("auto", "cuda") else []
    threads = config.threads or max(1, available_cores() // max(1, len(per_worker) + (own is not None)))
    import torch.multiprocessing  # here, not at the top: `search run --help` starts without torch

    context = torch.multiprocessing.get_context("spawn")  # pickles tensors as shared-memory handles
    workers = []
    for number, args in enumerate(per_worker, start=1 if own is not None else 0):
        process = context.Process(
            target=target, args=(*args, threads, gpu_for(number, gpus)), name=f"search-worker-{number}"
        )
        with _main_hidden():
            process.start()
        workers.append(process)

    def forward_sigterm() -> None:
        for p in workers:
            if p.is_alive():
                p.terminate()  # SIGTERM: each worker fails its running trial and exits

    INTERRUPTS.on_sigterm.append(forward_sigterm)
    previous = signal.signal(signal.SIGTERM, INTERRUPTS._handle) if own is None else None
    try:
        try:
            if own is not None:
                own()
        finally:
            interrupted = _join(workers)
    finally:
        INTERRUPTS.on_sigterm.remove(forward_sigterm)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if interrupted:
        raise KeyboardInterrupt
    failed = [p for p in workers if p.exitcode not in (0, None)]
    if failed:
        killed = sorted({signal.Signals(-p.exitcode).name for p in failed if p.exitcode < 0})
        how = (
            f"were killed ({', '.join(killed)})" if len(killed) == len(failed) else "stopped with an error (see above)"
        )
        raise SearchError(f"{len(failed)} of {len(workers) + (own is not None)} workers {how}")


@contextlib.contextmanager
def _main_hidden():
    """Spawned workers do not import the script being run.

    A spawned process first imports the parent's ``__main__`` (by its file, or by its name
    under ``python -m``), so a plain script that calls `search.tune` at the top, without an
    ``if __name__ == "__main__":`` guard, would run again in every worker and fail there. The
    workers' code lives in this package and needs nothing from the script: while a worker
    starts, ``__main__`` is an empty module, and the worker has nothing of it to import.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def parent_works(config: RunConfig) -> bool:
    """Whether this process is worker 0 too: not when each worker needs a GPU of its own."""
    gpus = _gpus() if config.device in ("auto", "cuda") else []
    return len(gpus) <= 1


@contextlib.contextmanager
def worker_process(index: int, threads: int, gpu: str | None, on_interrupt=None):
    """The body of a worker process (a search's or a confirmation's): its GPU, its threads, its signals;
    then its exit: 130 after Ctrl-C or SIGTERM (``on_interrupt`` hears it first), 1 and one line after an error."""
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    import torch

    INTERRUPTS.install()
    quiet_optuna()
    torch.set_num_threads(threads)
    try:
        yield
    except KeyboardInterrupt as exc:
        if on_interrupt is not None:
            on_interrupt(exc)
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
