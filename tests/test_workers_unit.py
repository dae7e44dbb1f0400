"""The parts of --jobs that need no services: sharing trials, GPUs, and refusing SQLite."""

import pytest

from search._processes import _gpus, gpu_for, split_trials


@pytest.mark.parametrize("n, jobs, shares", [(50, 4, [13, 13, 12, 12]), (2, 4, [1, 1, 0, 0]), (8, 2, [4, 4]), (None, 3, [None] * 3)])
def test_trials_are_shared_exactly(n, jobs, shares):
    assert split_trials(n, jobs) == shares
    if n is not None:
        assert sum(split_trials(n, jobs)) == n


def test_each_worker_gets_its_own_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    gpus = _gpus()
    assert gpus == ["2", "5"]
    assert [gpu_for(i, gpus) for i in range(4)] == ["2", "5", "2", "5"]
    assert gpu_for(0, ["0"]) is None and gpu_for(1, []) is None  # one GPU or none: nothing to choose


def test_jobs_on_sqlite_is_refused_and_creates_nothing(cli, workdir):
    code, _, err = cli("run", "--study", "s", "--dataset", "synthetic", "--jobs", "2")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "SQLite is not one; use --storage journal:///studies/s.log" in err
    assert not (workdir / "studies" / "studies.db").exists()


def test_the_workers_storage_times_are_added_up():
    import multiprocessing

    from search.storages._clock import StorageTime
    from search._workers import _total

    times = multiprocessing.get_context("spawn").SimpleQueue()
    assert _total(times) is None  # no worker reported
    times.put(StorageTime(10, 1.0, 1, 20.0))
    times.put(StorageTime(30, 2.0, 3, 20.0))
    assert _total(times) == StorageTime(40, 3.0, 4, 40.0)
