"""The parts of --jobs that need no services: sharing trials, GPUs, how many workers and threads."""

import pytest

from search.workers._processes import _gpus, gpu_for


def test_workers_take_exactly_the_trials_a_run_owes():
    """Four processes take tickets as fast as they can: 50 trials, 50 tickets taken, none twice."""
    import torch.multiprocessing

    from search.workers._processes import Tickets

    tickets = Tickets(50)
    taken = torch.multiprocessing.get_context("spawn").Queue()
    workers = [
        torch.multiprocessing.get_context("spawn").Process(target=_take_all, args=(tickets, taken)) for _ in range(4)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    counts = [taken.get() for _ in workers]
    assert sum(counts) == 50 and not tickets.take()
    tickets.give_back()  # a trial cut short by a lost storage is not one of the run's
    assert tickets.take() and not tickets.take()


def _take_all(tickets, taken) -> None:
    n = 0
    while tickets.take():
        n += 1
    taken.put(n)


def test_each_worker_gets_its_own_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    gpus = _gpus()
    assert gpus == ["2", "5"]
    assert [gpu_for(i, gpus) for i in range(4)] == ["2", "5", "2", "5"]
    assert gpu_for(0, ["0"]) is None and gpu_for(1, []) is None  # one GPU or none: nothing to choose


@pytest.mark.parametrize(
    "given, env, trials, cores, expected",
    [
        ({}, {}, 20, 2, (2, 1)),  # the default: a single-threaded worker per core
        ({}, {}, 1, 4, (1, 4)),  # one trial: one process, every core its thread
        ({"jobs": 1}, {}, 20, 2, (1, 2)),  # today's way, on request
        ({"threads": 1}, {}, 20, 8, (8, 1)),
        ({}, {"SEARCH_JOBS": "3", "SEARCH_THREADS": "2"}, 20, 8, (3, 2)),
    ],
)
def test_workers_and_threads_are_planned(monkeypatch, given, env, trials, cores, expected):
    import search.workers._processes
    from search.study._config import RunConfig
    from search.workers._processes import planned

    monkeypatch.delenv("SEARCH_JOBS", raising=False)
    monkeypatch.delenv("SEARCH_THREADS", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(search.workers._processes, "available_cores", lambda: cores)
    config = planned(RunConfig(n_trials=trials, device="cpu", **given))
    assert (config.jobs, config.threads) == expected


def test_the_workers_storage_times_are_added_up():
    import multiprocessing

    from search.storages._clock import StorageTime
    from search.workers._workers import _total

    times = multiprocessing.get_context("spawn").SimpleQueue()
    assert _total(times) is None  # no worker reported
    times.put(StorageTime(10, 1.0, 1, 20.0))
    times.put(StorageTime(30, 2.0, 3, 20.0))
    assert _total(times) == StorageTime(40, 3.0, 4, 40.0)
