"""Trials trained as one model (issue 28): K members of one MLP shape fused against K trainings one by one

    .venv/bin/python bench/fused.py                  # CPU, one torch thread, as a worker trains
    .venv/bin/python bench/fused.py --device cuda

The training core only (objectives/_fused.py): the same K configurations (learning rates, optimizers and
seeds differ; one shape, one batch size) trained for the same epochs, once one after another with
`train_epochs` and once fused, on the same data; printed per shape: samples a second both ways, and
the ratio. The study-level comparison the issue sets (a 24-trial study with `--fuse 1` against the
default) comes with the worker that asks for K trials at once.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--epochs", type=int, default=None, help="a member's epochs (default: 20 on the table, 2 on images)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = []
    try:
        from sklearn.datasets import load_breast_cancer

        table = Path("/tmp") / "fused-cancer.csv"
        load_breast_cancer(as_frame=True).frame.to_csv(table, index=False)
        cancer = load_splits(DataConfig(dataset="table", data_file=str(table), target="target"))
        cases.append(("breast cancer, 30-64-64-2, batch 64", cancer, (64, 64), 64, 20))
        cases.append(("breast cancer, 30-256-256-2, batch 32", cancer, (256, 256), 32, 20))
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
