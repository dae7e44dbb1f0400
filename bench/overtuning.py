"""Does the figure the tool shows hold on new data? Search pick vs confirmed pick vs a default.

    .venv/bin/python bench/overtuning.py            # about 10 minutes on 2 cores
    .venv/bin/python bench/overtuning.py --quick    # a smoke test (small studies; its figures mean little)

On the real FashionMNIST sample (../shared/data/fashion-mnist-sample: 3,443 training
images, 1,000 held out as the test split), for three study seeds: a 30-trial study (TPE,
median pruner), then confirmation at the defaults (5 candidates, 3 resamples). Printed
per seed and on average: the search value (the study's best validation accuracy), the
confirmed mean of the confirmed pick, and the test accuracy of the search pick, the
confirmed pick and the textbook Adam default (lr 1e-3, batch 64, 10 epochs), each
retrained on the whole training split (as `search train` does) with 3 seeds. Then the
issue's targets, each PASS or MISS, and the wall time of search and confirmation.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402

from objectives import DataConfig, ModelConfig, SearchSpace, TrainConfig, read_idx, train_final, write_torchvision_root  # noqa: E402
from search import open_storage  # noqa: E402

SAMPLE = ROOT.parent / "shared" / "data" / "fashion-mnist-sample"
N_TEST = 1_000
ADAM_DEFAULT = TrainConfig(optimizer="adam", lr=1e-3, batch_size=64, epochs=10)


def search(workdir: Path, *args) -> float:
    """Run `search ...`; its wall time."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SEARCH_STORAGE", None)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "search", *map(str, args)], cwd=workdir, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"bench: `search {' '.join(map(str, args))}` failed:\n{result.stderr}")
    return time.perf_counter() - started


def test_accuracy(root: str, train: TrainConfig, model: ModelConfig, seeds: range, device: str) -> float:
    """Mean test accuracy of ``train`` retrained on the whole training split, one run per seed."""
    data = DataConfig(data_dir=root)
    return statistics.fmean(train_final(train, model, data, device, seed)[1].test_accuracy for seed in seeds)


def configs(params: dict) -> tuple[TrainConfig, ModelConfig]:
    return SearchSpace.from_mapping({}).suggest(optuna.trial.FixedTrial(params))


def one_seed(work: Path, root: str, seed: int, trials: int, confirm: str, retrain_seeds: range, device: str) -> dict:
    storage = f"sqlite:///{work}/overtuning.db"
    name = f"seed{seed}"
    search_seconds = search(work, "run", "--study", name, "--storage", storage, "--data-dir", root, "--n-trials", trials,
                            "--seed", seed, "--confirm", "0", "--device", device)
    confirm_seconds = search(work, "confirm", "--study", name, "--storage", storage, "--data-dir", root,
                             "--confirm", confirm, "--device", device)
    study = optuna.load_study(study_name=name, storage=open_storage(storage, create=False))
    best = study.best_trial
    leader = study.user_attrs["search:confirmation"]["ranking"][0]
    picks = {"search pick": best.params, "confirmed pick": leader["params"]}
    row = {"seed": seed, "search value": best.value, "confirmed mean": leader["mean"],
           "search trial": best.number, "confirmed trial": leader["trial"],
           "search seconds": search_seconds, "confirm seconds": confirm_seconds}
    for label, params in picks.items():
        row[f"{label} test"] = test_accuracy(root, *configs(params), retrain_seeds, device)
    row["adam default test"] = test_accuracy(root, ADAM_DEFAULT, ModelConfig(), retrain_seeds, device)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small studies: a smoke test of the script")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    if not (SAMPLE / "t10k-images-idx3-ubyte.gz").exists():
        sys.exit(f"bench: the real FashionMNIST sample is not in {SAMPLE}")
    trials, confirm, seeds = (8, "3,2", range(1)) if args.quick else (30, "5,3", range(3))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        images, labels = read_idx(SAMPLE / "t10k-images-idx3-ubyte.gz"), read_idx(SAMPLE / "t10k-labels-idx1-ubyte.gz")
        n_train = images.shape[0] - N_TEST
        write_torchvision_root(work / "data", images[:n_train], labels[:n_train], images[n_train:], labels[n_train:])
        print(f"real FashionMNIST sample: {n_train:,} training images, {N_TEST:,} test; {trials} trials per study, "
              f"--confirm {confirm}; test figures: mean of {len(seeds)} retrains; device {args.device}", flush=True)
        for seed in (0, 1, 2):
            rows.append(one_seed(work, str(work / "data"), seed, trials, confirm, seeds, args.device))
            r = rows[-1]
            print(f"seed {seed}: search value {r['search value']:.4f} (trial {r['search trial']}), confirmed mean "
                  f"{r['confirmed mean']:.4f} (trial {r['confirmed trial']}); test: search pick {r['search pick test']:.4f}, "
                  f"confirmed pick {r['confirmed pick test']:.4f}, Adam default {r['adam default test']:.4f}; "
                  f"search {r['search seconds']:.0f}s, confirmation {r['confirm seconds']:.0f}s", flush=True)
    mean = {k: statistics.fmean(r[k] for r in rows) for k in rows[0] if k not in ("seed", "search trial", "confirmed trial")}
    print("\nmean over the 3 study seeds:")
    for key in ("search value", "confirmed mean", "search pick test", "confirmed pick test", "adam default test",
                "search seconds", "confirm seconds"):
        print(f"  {key:<22}{mean[key]:>9.4f}" if "seconds" not in key else f"  {key:<22}{mean[key]:>9.1f}")
    gap_search = mean["search value"] - mean["confirmed pick test"]
    gap_confirmed = mean["confirmed mean"] - mean["confirmed pick test"]
    print(f"\n  search value - confirmed pick's test accuracy:   {gap_search * 100:+.2f} points")
    print(f"  confirmed mean - confirmed pick's test accuracy: {gap_confirmed * 100:+.2f} points")
    checks = [
        ("confirmed mean within 2 points of the confirmed pick's test accuracy", abs(gap_confirmed) <= 0.02),
        ("confirmed pick's test accuracy >= the search pick's", mean["confirmed pick test"] >= mean["search pick test"] - 1e-9),
        ("confirmed pick's test accuracy >= the Adam default's - 0.5 points", mean["confirmed pick test"] >= mean["adam default test"] - 0.005),
        ("confirmation costs at most the search's own wall time", mean["confirm seconds"] <= mean["search seconds"]),
    ]
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "mean": mean, "checks": dict(checks)}, indent=2))


if __name__ == "__main__":
    main()
