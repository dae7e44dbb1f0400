"""A study's cost as it grows: the time a trial spends outside training, from trial 0 to trial 5,000.

    .venv/bin/python bench/growth.py                          # 5,000 trials on SQLite and PostgreSQL (about 25 min)
    .venv/bin/python bench/growth.py --trials 1200 --storages sqlite
    .venv/bin/python bench/growth.py --before 7614200         # the same from another revision, side by side

Each study is `search run` at the default sampler and pruner, one worker, on a tiny synthetic
table (64 rows, a network of 8 units, two epochs: a few milliseconds of training), so that
what grows is the study's own cost: the sampler, the pruner and the storage. A trial's time
outside training is the time from the previous trial's end to its own, less the seconds its
objective recorded; all times from the one worker's clock. Printed per storage: the mean of
that over trials 0-100, 1,000-1,100 and the last 100, and the last window against the first.

Then the sampler's quality on the same budget: the default sampler (TPE shown a window of the
study past 500 scored trials) against TPE over the whole study, in memory, on a fixed function of
the search space's shape (optimizer, learning rate, batch size, epochs, momentum, weight decay,
width), over several seeds: the best value each reached, and the seconds each took.

Target (issue 29): the last 100 trials' overhead at most 1.5x the first 100's, at no loss of
the best value reached.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bench import bench_env  # noqa: E402  (a `search` subprocess's environment)

PG = "postgresql://root@127.0.0.1:5432"
SPACE = "hidden_units: 8\nhidden_layers: 1\nepochs: 2\nbatch_size: 64\n"


def _pg(statement: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/test", autocommit=True) as conn:
        conn.execute(statement)


def overheads(url: str) -> list[float]:
    """Per trial, in order of ending: seconds from the previous trial's end to its own, less its objective's."""
    import optuna

    trials = optuna.load_study(study_name="g", storage=url).get_trials(deepcopy=False)
    ended = sorted((t for t in trials if t.datetime_complete is not None), key=lambda t: t.datetime_complete)
    return [
        (t.datetime_complete - prev.datetime_complete).total_seconds() - float(t.user_attrs.get("seconds", 0.0))
        for prev, t in zip(ended, ended[1:], strict=False)
    ]


def one_study(tree: Path, work: Path, kind: str, trials: int) -> tuple[list[float], float]:
    name = f"search_g_{uuid.uuid4().hex[:10]}"
    url = f"sqlite:///{work}/{name}.db" if kind == "sqlite" else f"{PG}/{name}"
    if kind == "postgresql":
        _pg(f'CREATE DATABASE "{name}"')
    try:
        started = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "search",
                "run",
                "--study",
                "g",
                "--storage",
                url,
                "--dataset",
                "synthetic",
                "--limit-train",
                "64",
                "--space",
                str(work / "space.yaml"),
                "--n-trials",
                str(trials),
                "--jobs",
                "1",
                "--confirm",
                "0",
            ],
            cwd=work,
            env=bench_env(PYTHONPATH=str(tree)),
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"bench: search run on {kind} failed:\n{done.stderr[-2000:]}")
        return overheads(url), wall
    finally:
        if kind == "postgresql":
            _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def windows(values: list[float], trials: int) -> list[tuple[str, float]]:
    marks = [0, 1000] if trials > 1100 else [0]
    shown = [(f"{a}-{a + 100}", statistics.mean(values[a : a + 100]) * 1000) for a in marks]
    shown.append((f"last 100 (to {trials})", statistics.mean(values[-100:]) * 1000))
    return shown


def surface(trial) -> float:
    """A fixed function of the search space's shape to minimise (its minimum 0: adam, lr 3e-3, batch 64, ...)."""
    import math

    optimizer = trial.suggest_categorical("optimizer", ["sgd", "momentum", "adam"])
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    batch = trial.suggest_categorical("batch_size", [16, 32, 64, 128, 256])
    epochs = trial.suggest_int("epochs", 1, 50)
    momentum = trial.suggest_float("momentum", 0.0, 0.99) if optimizer == "momentum" else 0.9
    decay = trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True)
    width = trial.suggest_int("hidden_units", 16, 1024, log=True)
    best_lr = {"sgd": 5e-2, "momentum": 1e-2, "adam": 3e-3}[optimizer]
    return (
        {"sgd": 0.3, "momentum": 0.1, "adam": 0.0}[optimizer]
        + (math.log10(lr / best_lr)) ** 2
        + 0.05 * (math.log2(batch) - 6) ** 2
        + 0.2 * (math.log(epochs / 20)) ** 2
        + (momentum - 0.9) ** 2
        + 0.02 * (math.log10(decay) + 4) ** 2
        + 0.1 * (math.log2(width / 256)) ** 2 * (1 + math.log10(lr / best_lr) ** 2)
    )


def quality(trials: int, seeds: int) -> None:
    import optuna

    from search.study._samplers import make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"the sampler's quality: {trials} trials in memory, {seeds} seeds, a fixed function (minimum 0)")
    found: dict[str, list[tuple[float, float]]] = {"default (window)": [], "TPE, whole study": []}
    for seed in range(seeds):
        for label in found:
            sampler = make_sampler("tpe", seed)
            if label != "default (window)":
                sampler = sampler.inner
            study = optuna.create_study(sampler=sampler)
            started = time.perf_counter()
            study.optimize(surface, n_trials=trials)
            found[label].append((study.best_value, time.perf_counter() - started))
    for label, runs in found.items():
        bests = [b for b, _ in runs]
        print(
            f"  {label:18} best value mean {statistics.mean(bests):.4f} (per seed: "
            f"{', '.join(f'{b:.4f}' for b in bests)}); {statistics.mean(s for _, s in runs):.0f} s a study"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--storages", default="sqlite,postgresql")
    parser.add_argument("--before", help="a git revision to run beside this checkout (in a temporary worktree)")
    parser.add_argument("--quality-trials", type=int, default=1500, help="0: no quality comparison")
    parser.add_argument("--quality-seeds", type=int, default=5)
    args = parser.parse_args()
    if args.quality_trials:
        sys.path.insert(0, str(ROOT))
        quality(args.quality_trials, args.quality_seeds)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "space.yaml").write_text(SPACE)
        trees = {"this checkout": ROOT}
        if args.before:
            old = work / "before"
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.before],
                check=True,
                capture_output=True,
            )
            trees = {args.before: old, **trees}
        try:
            print(f"{args.trials} trials a study, one worker; a trial's time outside training, mean over each window")
            for kind in args.storages.split(","):
                for label, tree in trees.items():
                    values, wall = one_study(tree, work, kind, args.trials)
                    shown = windows(values, args.trials)
                    cells = "  ".join(f"{w}: {ms:6.1f} ms" for w, ms in shown)
                    print(
                        f"{kind:10} {label:14} {cells}  last/first {shown[-1][1] / shown[0][1]:.2f}x  (wall {wall:.0f}s)",
                        flush=True,
                    )
        finally:
            if args.before:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True)


if __name__ == "__main__":
    main()
