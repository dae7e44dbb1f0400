"""A default study's wall time on a 5,000-row table: this checkout against an earlier commit, side by side.

    .venv/bin/python bench/table_time.py --against 6e12941            # Star (5,748 rows), seeds 0 and 1
    .venv/bin/python bench/table_time.py --against 6e12941 --table Computers --seeds 1

`search run --data FILE --target target --task regression` at its defaults (20 trials,
confirmation, yardstick) on a table of bench/tables.py written as a CSV, by this checkout and by
the commit named (a `git worktree` of it, run with the same Python), each in a fresh folder. The
two run in turn, A B B A per seed, so a machine that slows down or speeds up weighs on both; the
time of each is its process's wall time, start to exit. Printed: each run, the sums, and their ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def run(code: Path, data: Path, seed: int, work: Path) -> float:
    work.mkdir(parents=True)
    command = [sys.executable, "-m", "search", "run", "--data", str(data), "--target", "target"]
    command += ["--task", "regression", "--seed", str(seed), "--study", "t"]
    env = {**os.environ, "PYTHONPATH": str(code)}
    start = time.perf_counter()
    subprocess.run(command, cwd=work, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="the earlier commit")
    parser.add_argument("--table", default="Star")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a smoke test: HousePrices (546 rows), one seed")
    args = parser.parse_args()
    if args.quick:
        args.table, args.seeds = "HousePrices", 1
    import tables

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "table.csv"
        tables.tables()[args.table][2]().to_csv(data, index=False)
        before = tmp / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(before), args.against], cwd=ROOT, check=True)
        try:
            times: dict[str, list[float]] = {"this": [], "before": []}
            for seed in range(args.seeds):
                for label in ("this", "before", "before", "this"):
                    code = ROOT if label == "this" else before
                    seconds = run(code, data, seed, tmp / f"{label}-{seed}-{len(times[label])}")
                    times[label].append(seconds)
                    print(f"seed {seed} {label:<6} {seconds:6.1f}s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, check=True)
    now, then = sum(times["this"]), sum(times["before"])
    print(f"\n{args.table}: this checkout {now:.0f}s, {args.against} {then:.0f}s; ratio {now / then:.2f}x")


if __name__ == "__main__":
    main()
