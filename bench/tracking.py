"""What the trackers and checkpoints cost a trial: the same study without them and with each, side by side.

    .venv/bin/python bench/tracking.py                 # the README tour's table and the FashionMNIST sample
    .venv/bin/python bench/tracking.py --reps 3 --device cuda

Each study is `search run` with the same seed (the same trials, pruned alike), one worker, ``--confirm 0``,
on a SQLite file of its own: without trackers (the default, which keeps the 5 best trials' weights), with
``--keep 0`` (no weights kept), with ``--mlflow`` against a real `mlflow server` this script
starts (SQLite backend, loopback), with ``--tensorboard``, and with ``--checkpoint-every 1`` (a checkpoint
after every epoch but the last, and the best trials' weights kept: the most a study pays). Printed: the
search's wall time a trial (from the run's summary line) and its ratio to the run without; the median of
``--reps`` runs of each, after one run without that is not counted (the first pays for cold caches).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
from storage import workloads  # noqa: E402  (the tour's table and the FashionMNIST sample, as bench/storage.py runs them)

from bench import bench_env  # noqa: E402

RUN_LINE = re.compile(r"this run:\s+(\d+) trials.* in ([\d.]+)s")


def one(work: Path, name: str, args: list[str], extra: list[str]) -> float:
    url = f"sqlite:///{work}/{name}.db"
    done = subprocess.run(
        [sys.executable, "-m", "search", "run", "--study", name, "--storage", url, "--confirm", "0", "--jobs", "1"]
        + args
        + extra,
        cwd=work,
        env=bench_env(),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"bench: search run {' '.join(extra)} failed:\n{done.stderr[-2000:]}")
    found = RUN_LINE.search(done.stdout)
    return float(found.group(2)) / int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workloads", default="tour,fmnist", help="which of tour, fmnist")
    args = parser.parse_args()
    from _mlflow import MlflowServer

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "mlflow").mkdir()
        server = MlflowServer(work / "mlflow").start()
        try:
            variants = {
                "without": [],  # the default: the 5 best trials' weights kept, no checkpoint for a short trial
                "--keep 0": ["--keep", "0"],
                "--mlflow": ["--mlflow", server.uri],
                "--tensorboard": ["--tensorboard", str(work / "tb")],
                "--checkpoint-every 1": ["--checkpoint-every", "1"],
            }
            print(f"{args.trials} trials a study, one worker, {args.device}; seconds a trial (median of {args.reps})")
            chosen = args.workloads.split(",")
            for workload, run_args in workloads(work, args.trials).items():
                if workload not in chosen:
                    continue
                run_args = [*run_args, "--device", args.device]
                times = {v: [] for v in variants}
                one(work, f"{workload}_warm", run_args, [])  # the first run pays for cold caches (imports, files)
                for rep in range(args.reps):
                    for label, extra in variants.items():
                        name = f"{workload}_{label.strip('-').split()[0]}_{rep}"
                        times[label].append(one(work, name, run_args, extra))
                base = statistics.median(times["without"])
                cells = "  ".join(
                    f"{v}: {statistics.median(t):.3f} s ({statistics.median(t) / base:.2f}x)" for v, t in times.items()
                )
                print(f"{workload:7} {cells}", flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
