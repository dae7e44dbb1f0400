"""Storage calls and waiting a trial, before and after: the README tour's table and the FashionMNIST sample.

    .venv/bin/python bench/storage.py                       # before: 3c15bfa (the last main without the buffer)
    .venv/bin/python bench/storage.py --before HEAD~3 --storages sqlite,journal --reps 3

Each study runs with `search run`'s defaults (two workers here, the default sampler and pruner,
``--confirm 0``) from two trees in one run: ``--before`` checked out in a temporary git worktree,
and this checkout. Printed per storage and workload: the storage calls a trial and the time the
workers waited on them (both from the run summary's `storage:` line, which times every call at
the study's storage object), that wait as a share of the workers' time, and the server's own count
where it has one: PostgreSQL's transactions in the run's own database (pg_stat_database), Redis's
commands (the whole server's, so run it alone there). Each study gets a storage of its own (a file,
a database, a key prefix), removed after.

Targets (issue 29): on the tour's table with the default SQLite storage, idle, at most 15 storage
calls a trial and at most 10% of a worker's time on the storage.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT / "bench"))
from bench import bench_env  # noqa: E402  (a `search` subprocess's environment)

BEFORE = "3c15bfa"
STORAGE_LINE = re.compile(
    r"storage:\s+([\d,]+) calls \(([\d.]+) a trial\) waited ([\d.]+)s, (\d+)% of the workers' time"
)
RUN_LINE = re.compile(r"this run:\s+(\d+) trials.* in ([\d.]+)s")
PG = "postgresql://root@127.0.0.1:5432"


class Storage:
    """A storage of one study's own, and the server's count of what the study asked of it."""

    def __init__(self, kind: str, work: Path) -> None:
        self.kind, self.name = kind, f"search_b_{uuid.uuid4().hex[:10]}"
        self.url = {
            "sqlite": f"sqlite:///{work}/{self.name}.db",
            "journal": f"journal:///{work}/{self.name}.log",
            "postgresql": f"{PG}/{self.name}",
            "redis": f"redis://127.0.0.1:6379/0?prefix={self.name}",
        }[kind]
        if kind == "postgresql":
            _pg(f'CREATE DATABASE "{self.name}"')

    def served(self) -> int | None:
        """The server's count so far: PostgreSQL transactions in this database, Redis commands; else None."""
        if self.kind == "postgresql":
            time.sleep(0.6)  # the workers' backends have ended; PostgreSQL publishes their counts within a moment
            rows = _pg(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", (self.name,), fetch=True
            )
            return int(rows[0][0])
        if self.kind == "redis":
            import redis

            return int(redis.Redis.from_url("redis://127.0.0.1:6379/0").info("stats")["total_commands_processed"])
        return None

    def remove(self) -> None:
        if self.kind == "postgresql":
            _pg(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        elif self.kind == "redis":
            import redis

            client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
            keys = list(client.scan_iter(match=f"{self.name}:*"))
            if keys:
                client.delete(*keys)


def _pg(statement: str, args: tuple = (), fetch: bool = False):
    import psycopg

    with psycopg.connect(f"{PG}/test", autocommit=True) as conn:
        cursor = conn.execute(statement, args)
        return cursor.fetchall() if fetch else None


def workloads(work: Path, trials: int) -> dict[str, list[str]]:
    """Each workload's `search run` arguments (less --study and --storage)."""
    from sklearn.datasets import load_breast_cancer

    table = work / "cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(table, index=False)
    found = {"tour": ["--data", str(table), "--target", "target", "--metric", "roc_auc", "--n-trials", str(trials)]}
    if (SHARED / "data" / "fashion-mnist-sample").is_dir():
        root = work / "fmnist"
        subprocess.run([sys.executable, str(SHARED / "bench" / "make_real_root.py"), str(root)], check=True)
        found["fmnist"] = ["--data-dir", str(root), "--n-trials", str(trials), "--max-epochs", "3"]
    else:
        print("bench: the FashionMNIST sample is absent (../shared/data); the tour's table only")
    return found


def one_run(tree: Path, work: Path, kind: str, args: list[str]) -> dict:
    storage = Storage(kind, work)
    try:
        before = storage.served()
        done = subprocess.run(
            [sys.executable, "-m", "search", "run", "--study", "b", "--storage", storage.url, "--confirm", "0", *args],
            cwd=work,
            env=bench_env(PYTHONPATH=str(tree)),
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            sys.exit(f"bench: search run on {kind} from {tree} failed:\n{done.stderr[-2000:]}")
        served = storage.served()
    finally:
        storage.remove()
    line, run = STORAGE_LINE.search(done.stdout), RUN_LINE.search(done.stdout)
    if line is None or run is None:
        sys.exit(f"bench: no storage line in the run's summary:\n{done.stdout[-2000:]}")
    n = int(run.group(1))
    return {
        "calls": float(line.group(2)),
        "waited": float(line.group(3)) / n,
        "share": int(line.group(4)) / 100,
        "wall": float(run.group(2)),
        "served": None if before is None or served is None else (served - before) / n,
    }


def _mid(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r[key] is not None]
    return statistics.median(values) if values else None


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE, help=f"the git revision to compare with (default {BEFORE})")
    parser.add_argument("--storages", default="sqlite,journal,postgresql,redis")
    parser.add_argument("--reps", type=int, default=2, help="studies per tree, storage and workload (medians shown)")
    parser.add_argument("--trials", type=int, default=15)
    args = parser.parse_args()
    kinds = args.storages.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        old = work / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.before],
            check=True,
            capture_output=True,
        )
        try:
            loads = workloads(work, args.trials)
            trees = {"before": old, "after": ROOT}
            print(f"before: {args.before}; after: this checkout; {args.trials} trials a study, medians of {args.reps}")
            print(
                f"{'workload':8} {'storage':10} {'tree':6} {'calls/trial':>11} {'waited/trial':>12} "
                f"{'share':>6} {'server/trial':>12} {'wall':>6}"
            )
            for load, load_args in loads.items():
                for kind in kinds:
                    rows = {}
                    for _ in range(args.reps):  # the trees alternate, so a change in the machine's load hits both
                        for name, tree in trees.items():
                            rows.setdefault(name, []).append(one_run(tree, work, kind, load_args))
                    for name, runs in rows.items():
                        print(
                            f"{load:8} {kind:10} {name:6} {_fmt(_mid(runs, 'calls'), '11.1f')} "
                            f"{_fmt(_mid(runs, 'waited') * 1000, '10.1f')}ms {_fmt(_mid(runs, 'share'), '6.0%')} "
                            f"{_fmt(_mid(runs, 'served'), '12.1f')} {_fmt(_mid(runs, 'wall'), '5.1f')}s"
                        )
                    b, a = rows["before"], rows["after"]
                    print(
                        f"{'':8} {'':10} {'ratio':6} {_mid(b, 'calls') / _mid(a, 'calls'):10.1f}x "
                        f"{_mid(b, 'waited') / _mid(a, 'waited'):11.1f}x fewer calls / less waiting a trial"
                    )
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True)


if __name__ == "__main__":
    main()
