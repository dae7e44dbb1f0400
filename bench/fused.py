"""Trials trained as one model (issue 28): studies with `--fuse 1` against the default, and the training core

    .venv/bin/python bench/fused.py                  # CPU
    .venv/bin/python bench/fused.py --device cuda
    .venv/bin/python bench/fused.py --core           # the training core only

Studies (`search run`, a fresh SQLite file each, the same seeds; default workers): 24 trials on breast cancer
with a narrow space (hidden_units 64, `--confirm 0`, `--pruner none`), at the defaults (990 inputs: each
column also as 32 bins) and with `--bins 0` (30 inputs), and 24 on the real FashionMNIST
sample with the MLP (`--max-epochs 3`), each with `--fuse 1` (one trial at a time, as before fusing) and the
default (group sizes measured per shape), each run twice in turn (A B B A: a 2-core machine's runs of a few
seconds vary by a third) and the faster counted; printed: the run's own time (as its summary says), the
command's wall time, the best validation value, and the ratio of run times, side by side for each seed.

The core (objectives/_fused.py): the same K configurations (learning rates, optimizers and seeds differ; one
shape, one batch size) trained for the same epochs, once one after another with `train_epochs` and once
fused, on the same data; samples a second both ways, and the ratio.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from objectives import DataConfig, ModelConfig, TrainConfig, build_mlp, load_splits, train_epochs  # noqa: E402
from objectives._fused import FusedTraining  # noqa: E402


def configs(k: int, batch: int, epochs: int) -> list[TrainConfig]:
    kinds = ["adam", "momentum", "sgd"]
    return [
        TrainConfig(
            optimizer=kinds[i % 3],
            lr=(1e-3 if kinds[i % 3] == "adam" else 0.02) * (1 + i / k),
            batch_size=batch,
            epochs=epochs,
        )
        for i in range(k)
    ]


def one_by_one(splits, shape, cfgs) -> float:
    started = time.perf_counter()
    for i, config in enumerate(cfgs):
        torch.manual_seed(i)
        model = build_mlp(ModelConfig(hidden=shape), splits.train_x.shape[1], splits.num_outputs).to(
            splits.train_x.device
        )
        for _ in train_epochs(model, splits, config, i):
            pass
    return time.perf_counter() - started


def fused(splits, shape, cfgs) -> float:
    started = time.perf_counter()
    models, generators = [], []
    for i in range(len(cfgs)):
        torch.manual_seed(i)
        models.append(
            build_mlp(ModelConfig(hidden=shape), splits.train_x.shape[1], splits.num_outputs).to(splits.train_x.device)
        )
        generators.append(torch.Generator().set_state(torch.get_rng_state()))
    training = FusedTraining(models, cfgs, list(range(len(cfgs))), generators, splits)
    while training.members:
        training.epoch()
    return time.perf_counter() - started


def study(work: Path, name: str, args: list[str], fuse: str | None, device: str) -> tuple[float, float, float]:
    """One `search run`: its own time, the command's wall time, the best validation value."""
    storage = f"sqlite:///{work / (name + '.db')}"
    command = [sys.executable, "-m", "search", "run", "--study", name, "--storage", storage, "--device", device]
    command += args + (["--fuse", fuse] if fuse else [])
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=work).stdout
    wall = time.perf_counter() - started
    run = float(re.search(r"this run: .* in ([0-9.]+)s", out).group(1))
    best = float(re.search(r"best by search value: trial \d+, validation \S+ ([0-9.]+)", out).group(1))
    return run, wall, best


def _table_cases(work: Path) -> list[tuple[str, list[str]]]:
    """The narrow-table studies' labels and arguments (none without scikit-learn), their CSV written in ``work``."""
    try:
        from sklearn.datasets import load_breast_cancer
    except ImportError:
        print("bench: scikit-learn is absent: no table study")
        return []
    load_breast_cancer(as_frame=True).frame.to_csv(work / "cancer.csv", index=False)
    (work / "narrow.yaml").write_text("hidden_units: 64\n")
    table = ["--data", "cancer.csv", "--target", "target", "--space", "narrow.yaml"]
    narrow = table + ["--confirm", "0", "--pruner", "none"]
    # At the defaults each of the 30 columns is also 32 bins: 990 inputs, the first layer the step's cost.
    return [("breast cancer, hidden_units 64", narrow), ("the same, --bins 0 (30 inputs)", narrow + ["--bins", "0"])]


def _image_cases(work: Path) -> list[tuple[str, list[str]]]:
    """The FashionMNIST study's label and arguments (none without the real sample), its root made in ``work``."""
    if not (SHARED / "data" / "fashion-mnist-sample").exists():
        print("bench: the real FashionMNIST sample is absent (../shared): no image study")
        return []
    root = str(work / "fmnist")
    subprocess.run([sys.executable, str(SHARED / "bench" / "make_real_root.py"), root], check=True)
    return [("FashionMNIST sample, the MLP", ["--data-dir", root, "--max-epochs", "3", "--confirm", "0"])]


def studies(device: str, seeds: int, trials: int, repeats: int, only: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = (_table_cases(work) if only != "images" else []) + (_image_cases(work) if only != "table" else [])
        print(f"{device}: {trials}-trial studies, --fuse 1 against the default (measured), default workers")
        for case, (label, args) in enumerate(cases):
            totals = [0.0, 0.0]
            for seed in range(seeds):
                common = [*args, "--n-trials", str(trials), "--seed", str(seed)]
                runs: dict[str, list] = {"1": [], "default": []}
                for turn, setting in enumerate(["1", "default", "default", "1"][: 2 * repeats]):  # A B B A
                    fuse = None if setting == "default" else setting
                    runs[setting].append(study(work, f"s{case}{setting}{seed}{turn}", common, fuse, device))
                one, fused_ = (min(runs[setting]) for setting in ("1", "default"))  # the fastest of each
                print(
                    f"  {label:32} seed {seed}: --fuse 1 {one[0]:6.1f}s run ({one[1]:5.1f}s wall) best {one[2]:.4f}"
                    f"  default {fused_[0]:6.1f}s run ({fused_[1]:5.1f}s wall) best {fused_[2]:.4f}"
                    f"  {one[0] / fused_[0]:4.2f}x",
                    flush=True,
                )
                totals = [totals[0] + one[0], totals[1] + fused_[0]]
            print(
                f"  {label:32} all seeds: --fuse 1 {totals[0]:6.1f}s, default {totals[1]:6.1f}s: {totals[0] / totals[1]:4.2f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--core", action="store_true", help="the training core only, no studies")
    parser.add_argument("--only", choices=("table", "images"), help="one of the two studies")
    parser.add_argument("--seeds", type=int, default=2, help="studies per case and setting (default: 2)")
    parser.add_argument("--trials", type=int, default=24, help="trials per study (default: 24)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=2,
        choices=(1, 2),
        help="runs of each setting, in turn A B B A; the fastest counts",
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="the core's epochs (default: 20 on the table, 2 on images)"
    )
    args = parser.parse_args()
    if not args.core:
        studies(args.device, args.seeds, args.trials, args.repeats, args.only)
        return
    torch.set_num_threads(1)
    cases = []
    try:
        from sklearn.datasets import load_breast_cancer

        table = Path("/tmp") / "fused-cancer.csv"
        load_breast_cancer(as_frame=True).frame.to_csv(table, index=False)
        cancer = load_splits(DataConfig(dataset="table", data_file=str(table), target="target", bins=0))
        binned = load_splits(DataConfig(dataset="table", data_file=str(table), target="target"))  # 32 bins a column
        cases.append(("breast cancer, 30-64-64-2, batch 64", cancer, (64, 64), 64, 20))
        cases.append(("breast cancer, 30-256-256-2, batch 32", cancer, (256, 256), 32, 20))
        cases.append(("breast cancer, 990-64-64-2, batch 16", binned, (64, 64), 16, 10))
        cases.append(("breast cancer, 990-64-64-2, batch 64", binned, (64, 64), 64, 10))
    except ImportError:
        print("bench: scikit-learn is absent: no table")
    images = load_splits(DataConfig(dataset="synthetic", limit_train=3000))
    cases.append(("synthetic images, 784-512-512-10, batch 64", images, (512, 512), 64, 2))
    print(f"{args.device}, one thread; samples a second (K members x rows x epochs), models built in both")
    for label, splits, shape, batch, epochs in cases:
        epochs = args.epochs or epochs
        splits = splits.to(args.device)
        rows = splits.train_x.shape[0] * epochs
        for k in (1, 4, 8, 16):
            cfgs = configs(k, batch, epochs)
            a, b = one_by_one(splits, shape, cfgs), fused(splits, shape, cfgs)
            print(
                f"  {label:44} {epochs:2} epochs, K={k:2}: one by one {k * rows / a:9,.0f}/s  fused {k * rows / b:9,.0f}/s  {a / b:4.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
