"""Shared fixtures: FashionMNIST-format IDX files, in-process CLI calls, the real sample."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from objectives import write_torchvision_root
from objectives.data._load import _raw, _split

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist-sample"


def learnable_images(n: int, seed: int, num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [n, 28, 28] images whose class shows as a bright block at a class-specific place."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    images = torch.randint(0, 80, (n, 28, 28), generator=g, dtype=torch.int32)
    for c in range(num_classes):
        row, col = divmod(c, 4)
        images[labels == c, 2 + 7 * row : 8 + 7 * row, 2 + 6 * col : 7 + 6 * col] += 150
    return images.clamp(0, 255).to(torch.uint8), labels.to(torch.uint8)


@pytest.fixture(scope="session")
def fashion_root(tmp_path_factory) -> Path:
    """A torchvision root with small FashionMNIST-format IDX files (1,000 train, 200 test)."""
    root = tmp_path_factory.mktemp("fmnist")
    train_x, train_y = learnable_images(1000, seed=1)
    test_x, test_y = learnable_images(200, seed=2)
    write_torchvision_root(root, train_x, train_y, test_x, test_y)
    return root


@pytest.fixture(autouse=True)
def _fresh_data_cache():
    """Each test loads its data anew (tests write files under the same names)."""
    _split.cache_clear()
    _raw.cache_clear()
    yield


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A clean current directory, so the default storage (./studies/) lands in tmp."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEARCH_STORAGE", raising=False)
    return tmp_path


@pytest.fixture
def cli(workdir, capsys):
    """Call `search ...` in-process; returns (exit code, stdout, stderr)."""
    from search import main

    def call(*args: str) -> tuple[int, str, str]:
        try:
            code = main(quick_run([str(a) for a in args]))
        except SystemExit as exc:  # argparse exits on usage errors and --help
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return call


def quick_run(argv: list[str]) -> list[str]:
    """`search run` in tests skips confirmation (15 retrains) unless the test asks for it with --confirm."""
    if argv[:1] == ["run"] and not any(a == "--confirm" or a.startswith("--confirm=") for a in argv):
        return [*argv, "--confirm", "0"]
    return argv


def storage_line(out: str) -> tuple[int, float]:
    """The storage calls and the share of the workers' time in a run summary's `storage:` line."""
    line = next(line for line in out.splitlines() if line.strip().startswith("storage:"))
    return int(line.split()[1].replace(",", "")), float(line.rsplit("%", 1)[0].split()[-1]) / 100


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    if not (SAMPLE_DIR / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("the real FashionMNIST sample (../shared/data/fashion-mnist-sample) is absent")
    return SAMPLE_DIR


def pytest_configure(config):
    # Two cores: one intra-op thread per test process keeps timings steady.
    torch.set_num_threads(int(os.environ.get("SEARCH_TEST_THREADS", "1")))
    # A run in a test is one process with one thread unless the test asks for --jobs or --threads (the
    # default, a worker per core, has tests of its own); the runs' subprocesses inherit this.
    os.environ.setdefault("SEARCH_JOBS", "1")
    os.environ.setdefault("SEARCH_THREADS", "1")


@pytest.fixture
def own_storage(tmp_path):
    """``own_storage(kind)``: the URL of a storage of this test's own (a database, a Redis prefix, a file), removed after."""
    from _procs import new_database

    made = []

    def make(kind: str) -> str:
        url, drop = new_database(kind, tmp_path)
        made.append(drop)
        return url

    yield make
    for drop in made:
        drop()
