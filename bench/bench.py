"""Speed benchmark: the seed tutorial's loop against this project's, side by side, in one run.

    python bench/bench.py            # about 5 minutes on 2 cores
    python bench/bench.py --quick    # smaller, for a smoke test

Every figure is measured here, now, on the same FashionMNIST-format data: the real
FashionMNIST sample in ../shared/data/fashion-mnist-sample (tiled to the size of the real
training split) when present, else the synthetic set. Not part of the unit tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from objectives import (  # noqa: E402
    DataConfig,
    ModelConfig,
    TrainConfig,
    build_mlp,
    load_splits,
    read_idx,
    train_epochs,
    write_torchvision_root,
)
from objectives.data._synthetic import synthetic as _synthetic  # noqa: E402

SAMPLE = ROOT.parent / "shared" / "data" / "fashion-mnist-sample"
FLOPS_PER_SAMPLE = 6 * 669_706  # forward + backward of the 784-512-512-10 MLP, per the issue


def make_root(directory: Path, n_train: int) -> str:
    """A torchvision root with ``n_train`` training images; says where they came from."""
    if (SAMPLE / "t10k-images-idx3-ubyte.gz").exists():
        images, labels = read_idx(SAMPLE / "t10k-images-idx3-ubyte.gz"), read_idx(SAMPLE / "t10k-labels-idx1-ubyte.gz")
        source = f"real FashionMNIST sample ({images.shape[0]:,} images) tiled to {n_train:,}"
    else:
        x, y, *_ = _synthetic()
        images, labels = x.reshape(-1, 28, 28), y.to(torch.uint8)
        source = f"synthetic set tiled to {n_train:,} (the real sample is absent)"
    reps = -(-n_train // images.shape[0])
    train_x, train_y = images.repeat(reps, 1, 1)[:n_train], labels.repeat(reps)[:n_train]
    write_torchvision_root(directory, train_x, train_y, images, labels)
    return source


# --- the seed tutorial's loop, as it was written (ReLU on the logits included) -------------


class SeedNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10), nn.ReLU()
        )

    def forward(self, x):
        return self.linear_relu_stack(self.flatten(x))


def seed_loop(root: str, max_samples: int) -> float:
    from torch.utils.data import DataLoader
    from torchvision import datasets
    from torchvision.transforms import ToTensor

    data = datasets.FashionMNIST(root=root, train=True, download=False, transform=ToTensor())
    loader = DataLoader(data, batch_size=64)
    model, loss_fn = SeedNetwork(), nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    seen, start = 0, time.perf_counter()
    for X, y in loader:
        loss = loss_fn(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += len(X)
        if seen >= max_samples:
            break
    return seen / (time.perf_counter() - start)


# --- this project's loop ------------------------------------------------------------------


def project_trial(root: str, batch_size: int, epochs: int, device: str) -> float:
    splits = load_splits(DataConfig(data_dir=root)).to(device)
    torch.manual_seed(0)
    model = build_mlp(ModelConfig()).to(device)
    config = TrainConfig(batch_size=batch_size, epochs=epochs, optimizer="momentum", lr=0.01)
    results = list(train_epochs(model, splits, config))
    return sum(r.samples for r in results) / sum(r.seconds for r in results)


def search_train(root: str, device: str, evaluate: bool) -> float:
    """`search train`'s loop (3 epochs, batch 64, the seed's SGD) on the whole training split: samples per second of
    its wall time, with the test split scored after every epoch (as `search train` does) or not at all."""
    import dataclasses

    from objectives import load_train_test

    splits = load_train_test(DataConfig(data_dir=root)).to(device)
    if not evaluate:
        splits = dataclasses.replace(splits, val_x=splits.val_x[:0], val_y=splits.val_y[:0])
    torch.manual_seed(0)
    model = build_mlp(ModelConfig()).to(device)
    start = time.perf_counter()
    results = list(train_epochs(model, splits, TrainConfig(batch_size=64, epochs=3)))
    return sum(r.samples for r in results) / (time.perf_counter() - start)


def matmul_gflops(size: int = 2048, repeats: int = 8) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def bench_env(**extra: str) -> dict[str, str]:
    """The environment for a `search` subprocess that measures the defaults: this checkout on the path, and no
    $SEARCH_STORAGE, $SEARCH_JOBS or $SEARCH_THREADS of the user's."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        **extra,
    }
    for key in ("SEARCH_STORAGE", "SEARCH_JOBS", "SEARCH_THREADS"):
        env.pop(key, None)
    return env


def search(workdir: Path, *args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "search", *map(str, args)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("SEARCH_STORAGE", None)
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"bench: `search {' '.join(map(str, args))}` failed:\n{result.stderr}")
    return result


def study_trials(storage: str, study: str) -> list:
    import optuna

    from search import open_storage

    return optuna.load_study(study_name=study, storage=open_storage(storage, create=False)).get_trials(deepcopy=False)


def aggregate(workdir: Path, root: str, jobs: int, trials: int, epochs: int) -> dict:
    """A real `search run --jobs N`: trial-samples per second of wall time, and peak memory per worker."""
    space = workdir / "space-aggregate.yaml"
    space.write_text(f"batch_size: 64\nepochs: {epochs}\noptimizer: momentum\nlr: 0.01\nmomentum: 0.9\n")
    storage = f"journal:///{workdir}/aggregate.log"
    start = time.perf_counter()
    search(
        workdir,
        "run",
        "--study",
        "aggregate",
        "--storage",
        storage,
        "--data-dir",
        root,
        "--space",
        space,
        "--jobs",
        jobs,
        "--n-trials",
        trials,
        "--pruner",
        "none",
        "--device",
        "cpu",
        "--confirm",
        "0",
    )
    wall = time.perf_counter() - start
    done = study_trials(storage, "aggregate")
    n_train = load_splits(DataConfig(data_dir=root)).train_x.shape[0]
    samples = sum(t.user_attrs["epochs_run"] * n_train for t in done)
    busy = sum(t.user_attrs["epochs_run"] * n_train / t.user_attrs["samples_per_second"] for t in done)
    return {
        "wall": samples / wall,  # start-up, data loading and storage writes included
        "training": samples / (busy / jobs),  # only while the workers train
        "peak_rss_mb": max(t.user_attrs["peak_rss_mb"] for t in done),
    }


def time_to_accuracy(workdir: Path, root: str, trials: int, max_epochs: int) -> dict:
    """The same study (sampler, seed, data) with the median pruner and without."""
    out = {}
    for pruner in ("median", "none"):
        storage = f"sqlite:///{workdir}/tta.db"
        search(
            workdir,
            "run",
            "--study",
            f"tta-{pruner}",
            "--storage",
            storage,
            "--data-dir",
            root,
            "--n-trials",
            trials,
            "--max-epochs",
            max_epochs,
            "--pruner",
            pruner,
            "--seed",
            0,
            "--device",
            "cpu",
            "--confirm",
            "0",
        )
        done = study_trials(storage, f"tta-{pruner}")
        complete = [t.value for t in done if t.value is not None and t.state.name == "COMPLETE"]
        out[pruner] = {
            "best": max(complete),
            "trial_epochs": sum(t.user_attrs.get("epochs_run", 0) for t in done),
            "pruned": sum(t.state.name == "PRUNED" for t in done),
        }
    return out


def import_torch_peak_mb() -> float:
    """What `import torch` alone costs a process: the floor under every worker's peak memory."""
    probe = (
        "import torch\n"
        "print([int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')][0] / 1024)"
    )
    return float(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller runs: a smoke test, not a measurement")
    parser.add_argument("--device", default="cpu", help="device for the project's single-trial figures (cpu, cuda)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    quick = args.quick
    cores = len(os.sched_getaffinity(0))
    n_train = 12_000 if quick else 60_000

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = make_root(work / "data", n_train)
        root = str(work / "data")
        print(f"data: {source}; {cores} cores; torch {torch.__version__}; {torch.get_num_threads()} threads")

        # This machine's speed drifts (a shared virtual machine: a second core comes and
        # goes for seconds at a time). The side-by-side figures are taken in interleaved
        # rounds and each reported as its best round (timeit's rule: the least disturbed
        # run), the same rule for the seed loop, our loop and the matmul bound.
        rounds = {"seed": [], "b64": [], "b256": [], "gflops": [], "train": [], "train_no_eval": []}
        for _ in range(1 if quick else 5):
            rounds["seed"].append(seed_loop(root, max_samples=6_000 if quick else 20_000))
            rounds["b64"].append(project_trial(root, 64, 1, args.device))
            rounds["b256"].append(project_trial(root, 256, 1, args.device))
            rounds["gflops"].append(matmul_gflops())
            rounds["train"].append(search_train(root, args.device, evaluate=True))
            rounds["train_no_eval"].append(search_train(root, args.device, evaluate=False))
        seed, b64, b256, gflops = (max(rounds[k]) for k in ("seed", "b64", "b256", "gflops"))
        train_eval, train_plain = max(rounds["train"]), max(rounds["train_no_eval"])
        bound = gflops * 1e9 / FLOPS_PER_SAMPLE
        agg = aggregate(work, root, jobs=cores, trials=cores * (1 if quick else 4), epochs=1 if quick else 3)

        # Time to accuracy on the real sample as it is (not tiled): a study of real length.
        tta_root = work / "tta"
        make_root(tta_root, 4_000)
        tta = time_to_accuracy(work, str(tta_root), trials=12 if quick else 40, max_epochs=4 if quick else 10)

    import_torch_mb = import_torch_peak_mb()
    rows = [
        ("seed loop (DataLoader + ToTensor, batch 64)", seed),
        (f"one trial, batch 64 ({args.device})", b64),
        (f"one trial, batch 256 ({args.device})", b256),
        (f"search train's loop, 3 epochs, batch 64, test scored each epoch ({args.device})", train_eval),
        (f"  ... the same without the per-epoch test scoring ({args.device})", train_plain),
        (f"study, --jobs {cores}, batch 64: whole run", agg["wall"]),
        (f"study, --jobs {cores}, batch 64: while training", agg["training"]),
        (f"compute bound ({gflops:.0f} GFLOP/s matmul / {FLOPS_PER_SAMPLE:,} FLOP)", bound),
    ]
    spread = {k: f"{min(v):,.0f}-{max(v):,.0f}" for k, v in rounds.items()}
    print(
        f"best of {len(rounds['seed'])} interleaved rounds; rounds (min-max): seed {spread['seed']}, batch 64 {spread['b64']}, batch 256 {spread['b256']}, GFLOP/s {spread['gflops']}"
    )
    print(f"\n{'figure':<62}{'samples/s':>12}{'x seed':>9}")
    for name, value in rows:
        print(f"{name:<62}{value:>12,.0f}{value / seed:>8.2f}x")
    print(f"{'batch 256 as a share of the compute bound':<62}{b256 / bound:>12.0%}")
    print(f"{'peak memory per worker (MB, VmHWM, largest of the workers)':<62}{agg['peak_rss_mb']:>12,.0f}")
    print(f"{'peak memory of a process that only imports torch (MB, VmHWM)':<62}{import_torch_mb:>12,.0f}")
    pruned, full = tta["median"], tta["none"]
    print("\ntime to accuracy (same sampler, seed and data; median pruner vs none):")
    for name, r in (("median", pruned), ("none", full)):
        print(
            f"  {name:<7} best validation accuracy {r['best']:.4f}, trial-epochs {r['trial_epochs']:>4}, pruned {r['pruned']}"
        )
    print(
        f"  pruning spent {pruned['trial_epochs'] / full['trial_epochs']:.0%} of the trial-epochs; "
        f"best accuracy {pruned['best'] - full['best']:+.4f}"
    )

    checks = [
        ("one trial at batch 64 >= 2.5x the seed loop", b64 >= 2.5 * seed),
        ("study aggregate (whole run) >= 5x the seed loop", agg["wall"] >= 5 * seed),
        ("batch 256 >= 70% of the compute bound", b256 >= 0.7 * bound),
        ("peak memory per worker <= 600 MB", agg["peak_rss_mb"] <= 600),
        (
            "pruning: same best accuracy (within 0.005) with <= 50% of the trial-epochs",
            pruned["best"] >= full["best"] - 0.005 and pruned["trial_epochs"] <= 0.5 * full["trial_epochs"],
        ),
    ]
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "rows": dict(rows),
                    "rounds": rounds,
                    "b256_share": b256 / bound,
                    "aggregate": agg,
                    "time_to_accuracy": tta,
                    "checks": dict(checks),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
