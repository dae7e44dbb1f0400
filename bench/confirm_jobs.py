"""Confirmation with worker processes against one process, side by side (issue 20).

    .venv/bin/python bench/confirm_jobs.py            # about 8 minutes on 2 cores
    .venv/bin/python bench/confirm_jobs.py --quick    # a smoke test

Two sizes: a search on the real FashionMNIST sample tiled to 6,000 images (trials of up to 3
epochs), and one on 12,000 images (up to 10 epochs); the synthetic set when the sample is absent.
After each search, `search confirm` of the same leaders on copies of its database: `--jobs 1` and
the default (a worker per core), in turn, twice. Printed: each confirmation's wall time
(start-up included), the retrains it ran, and the speed ratio.

Target: confirmation with `--jobs N` no slower than one process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench import bench_env, make_root  # noqa: E402  (bench/bench.py: the real sample tiled to a size)


def search(args: list, work: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "search", *map(str, args)], cwd=work, env=bench_env(), capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"bench: search {' '.join(map(str, args))} failed:\n{result.stderr}")
    return time.perf_counter() - started


def retrains(db: Path) -> int:
    import optuna

    storage = f"sqlite:///{db}"
    study = optuna.load_study(study_name="c:confirm", storage=storage)
    return sum(1 for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)


def one_size(work: Path, n_train: int, trials: int, epochs: int, confirm: str, rounds: int) -> tuple[dict, float]:
    """A search on ``n_train`` images, then its confirmation with each option, ``rounds`` times in turn:
    the seconds of each, and the default's speed against one process (best of each)."""
    cores = len(os.sched_getaffinity(0))
    data = work / f"data{n_train}"
    source = make_root(data, n_train)
    searched = work / f"searched{n_train}.db"
    search(
        [
            "run",
            "--study",
            "c",
            "--storage",
            f"sqlite:///{searched}",
            "--data-dir",
            data,
            "--n-trials",
            trials,
            "--max-epochs",
            epochs,
            "--confirm",
            0,
            "--device",
            "cpu",
        ],
        work,
    )
    print(
        f"\n{source}: a search of {trials} trials (up to {epochs} epochs), then `search confirm --confirm {confirm}`",
        flush=True,
    )
    times: dict[str, list[float]] = {"--jobs 1": [], f"the default ({cores} worker processes)": []}
    for round_ in range(rounds):
        for i, label in enumerate(times):
            db = work / f"r{n_train}-{round_}{i}.db"
            shutil.copy(searched, db)
            flags = ["--jobs", 1] if i == 0 else []
            wall = search(
                [
                    "confirm",
                    "--study",
                    "c",
                    "--storage",
                    f"sqlite:///{db}",
                    "--data-dir",
                    data,
                    "--confirm",
                    confirm,
                    "--device",
                    "cpu",
                    *flags,
                ],
                work,
            )
            times[label].append(wall)
            print(f"  round {round_ + 1}  {label:<36} {wall:6.1f}s  ({retrains(db)} retrains)", flush=True)
    one, many = (min(v) for v in times.values())
    print(f"  best of each: --jobs 1 {one:.1f}s, the default {many:.1f}s: {one / many:.2f}x the speed of one process")
    return times, one / many


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    sizes = [(2_000, 4, 1, "2,2", 1)] if args.quick else [(6_000, 12, 3, "3,3", 2), (12_000, 12, 10, "3,3", 2)]
    print(f"{len(os.sched_getaffinity(0))} cores")
    results, ratios = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for n_train, trials, epochs, confirm, rounds in sizes:
            label = f"{n_train} images, {epochs} epochs"
            results[label], ratios[label] = one_size(Path(tmp), n_train, trials, epochs, confirm, rounds)
    ok = all(r >= 1.0 for r in ratios.values())
    print(
        f"\n{'PASS' if ok else 'MISS'}  confirmation with worker processes no slower than one process "
        f"({', '.join(f'{k}: {r:.2f}x' for k, r in ratios.items())})"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"seconds": results, "speed ratio": ratios, "check": ok}, indent=2))


if __name__ == "__main__":
    main()
