"""The default study against the same study written the plain Optuna way: speed, and time to a good model.

    .venv/bin/python bench/peer.py               # 3 study seeds on the real FashionMNIST sample; about 25 minutes
    .venv/bin/python bench/peer.py --quick       # a smoke test
    .venv/bin/python bench/peer.py --pruners median,percentile,hyperband   # the default study with other pruners too

The peer is ../shared/bench/plain_optuna.py (DataLoader + ToTensor, torch.optim, one process,
TPE seed 0, median pruner, the same search space), on the same torchvision root: the real
FashionMNIST sample, 3,443 training images and 1,000 test images. Our study is `search run` at its
defaults with ``--confirm 0`` (search only), ``--n-trials 30``.

Printed per study seed: the wall time of each, and their ratio; then the time each needs for its
pick (the best trial so far, by validation accuracy) to reach the test accuracy of the textbook
Adam default (lr 1e-3, batch 64, 10 epochs), and the test accuracy its pick has at fixed wall
times. Every pick is retrained the same way (`search train`'s loop on the 3,443 images, scored on
the 1,000), so the comparison is the search's, not the retraining's.

Targets (issue 20): the default study at least 5x the peer (search only, idle); the time for
the pick to reach the Adam default's test accuracy at most a fifth of the peer's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from bench import bench_env  # noqa: E402  (bench/bench.py: a `search` subprocess's environment)

SHARED = ROOT.parent / "shared"
PEER = SHARED / "bench" / "plain_optuna.py"
MARKS = (10, 20, 30, 60, 120)  # seconds

# The peer, unchanged, with its study kept in a journal file so that its trials' times can be read.
PEER_WRAPPER = """
import runpy, sys, time, optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
log, start_file = sys.argv.pop(1), sys.argv.pop(1)
sys.argv = sys.argv[1:]  # the peer's script, then its own arguments, as if it were run itself
open(start_file, "w").write(repr(time.time()))
create = optuna.create_study
optuna.create_study = lambda **kw: create(storage=JournalStorage(JournalFileBackend(log)), study_name="peer", **kw)
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def adam_default_test(root: str, cache: dict) -> float:
    from objectives import DataConfig, TrainConfig, train_final
    from objectives.models import ModelConfig

    key = ("adam",)
    if key not in cache:
        cache[key] = train_final(
            TrainConfig(optimizer="adam", lr=1e-3, batch_size=64, epochs=10),
            ModelConfig(),
            DataConfig(data_dir=root),
            "cpu",
            0,
        )[1].test_value
    return cache[key]


def test_of(root: str, params: dict, cache: dict) -> float:
    """A pick's test accuracy, retrained as `search train` does (cached per configuration)."""
    from objectives import DataConfig, TrainConfig, train_final
    from objectives.models import ModelConfig

    key = tuple(sorted(params.items()))
    if key not in cache:
        train = {k: params[k] for k in ("optimizer", "lr", "batch_size", "epochs") if k in params}
        if params.get("optimizer") == "momentum":
            train["momentum"] = params["momentum"]
        cache[key] = train_final(TrainConfig(**train), ModelConfig(), DataConfig(data_dir=root), "cpu", 0)[1].test_value
    return cache[key]


def timeline(trials, t0: float) -> list[tuple[float, dict, float]]:
    """(seconds since the start, the pick's params, its validation value) each time the pick changes."""
    out, best = [], None
    for t in sorted((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.datetime_complete):
        if best is None or t.value > best:
            best = t.value
            out.append((t.datetime_complete.timestamp() - t0, dict(t.params), t.value))
    return out


def ours(work: Path, root: str, seed: int, trials: int, pruner: str) -> tuple[float, list]:
    import optuna

    from search import open_storage

    storage = f"sqlite:///{work}/ours.db"
    name = f"ours-{pruner}-{seed}"
    env = bench_env()
    t0 = time.time()
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "search",
            "run",
            "--study",
            name,
            "--storage",
            storage,
            "--data-dir",
            root,
            "--n-trials",
            str(trials),
            "--seed",
            str(seed),
            "--pruner",
            pruner,
            "--confirm",
            "0",
            "--device",
            "cpu",
        ],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    study = optuna.load_study(study_name=name, storage=open_storage(storage, create=False))
    return wall, timeline(study.get_trials(deepcopy=False), t0)


def peer(work: Path, root: str, trials: int) -> tuple[float, list]:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    log, start = work / "peer.log", work / "peer.start"
    log.unlink(missing_ok=True)
    wrapper = work / "peer_wrapper.py"
    wrapper.write_text(PEER_WRAPPER)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(wrapper), str(log), str(start), str(PEER), root, str(trials)],
        cwd=work,
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    study = optuna.load_study(study_name="peer", storage=JournalStorage(JournalFileBackend(str(log))))
    return wall, timeline(study.get_trials(deepcopy=False), float(start.read_text()))


def reach(line, root: str, target: float, cache: dict) -> float | None:
    """The first time the pick's test accuracy reaches ``target``."""
    for seconds, params, _ in line:
        if test_of(root, params, cache) >= target:
            return seconds
    return None


def at(line, root: str, seconds: float, cache: dict) -> float | None:
    picks = [params for t, params, _ in line if t <= seconds]
    return test_of(root, picks[-1], cache) if picks else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--pruners", default="median", help="comma-separated pruners for our study (default: median)")
    parser.add_argument("--json")
    args = parser.parse_args()
    if not (SHARED / "data" / "fashion-mnist-sample" / "t10k-images-idx3-ubyte.gz").exists() or not PEER.exists():
        sys.exit("bench: the real FashionMNIST sample or the peer script is absent (../shared)")
    seeds, trials = (1, 6) if args.quick else (args.seeds, args.trials)
    pruners = args.pruners.split(",")
    cache: dict = {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = str(work / "data")
        subprocess.run([sys.executable, str(SHARED / "bench" / "make_real_root.py"), root], check=True)
        target = adam_default_test(root, cache)
        print(
            f"real FashionMNIST sample: 3,443 training images, 1,000 test; {trials} trials; Adam default's test "
            f"accuracy {target:.4f} (the target)"
        )
        peer_wall, peer_line = peer(work, root, trials)  # the peer's TPE seed is fixed: one run stands for all
        peer_reach = reach(peer_line, root, target, cache)
        for seed in range(seeds):
            for pruner in pruners:
                wall, line = ours(work, root, seed, trials, pruner)
                row = {
                    "seed": seed,
                    "pruner": pruner,
                    "ours s": wall,
                    "peer s": peer_wall,
                    "speed": peer_wall / wall,
                    "ours reach s": reach(line, root, target, cache),
                    "peer reach s": peer_reach,
                    "ours at": {m: at(line, root, m, cache) for m in MARKS},
                    "peer at": {m: at(peer_line, root, m, cache) for m in MARKS},
                }
                rows.append(row)
                print(
                    f"seed {seed} ({pruner}): ours {wall:.0f}s, peer {peer_wall:.0f}s: {row['speed']:.2f}x; pick reaches "
                    f"{target:.4f} after {_s(row['ours reach s'])} (peer {_s(peer_reach)})",
                    flush=True,
                )
    print(
        f"\n{'pruner':<12}{'ours s':>8}{'peer s':>8}{'speed':>8}{'reach (ours)':>14}{'reach (peer)':>14}"
        + "".join(f"{'@' + str(m) + 's':>8}" for m in MARKS)
    )
    for pruner in pruners:
        mine = [r for r in rows if r["pruner"] == pruner]
        reached = [r["ours reach s"] for r in mine if r["ours reach s"] is not None]
        at_marks = [
            statistics.fmean([r["ours at"][m] for r in mine if r["ours at"][m] is not None] or [float("nan")])
            for m in MARKS
        ]
        print(
            f"{pruner:<12}{statistics.fmean(r['ours s'] for r in mine):>8.0f}{peer_wall:>8.0f}"
            f"{statistics.fmean(r['speed'] for r in mine):>7.2f}x{_s(max(reached) if len(reached) == len(mine) else None):>14}"
            f"{_s(peer_reach):>14}" + "".join(f"{v:>8.4f}" for v in at_marks)
        )
    peer_marks = [rows[0]["peer at"][m] for m in MARKS]
    print(
        f"{'peer':<12}{'':>8}{peer_wall:>8.0f}{'':>8}{'':>14}{_s(peer_reach):>14}"
        + "".join(f"{v if v is not None else float('nan'):>8.4f}" for v in peer_marks)
    )
    default = [r for r in rows if r["pruner"] == pruners[0]]
    worst_reach = max((r["ours reach s"] or float("inf")) for r in default)
    checks = [
        (
            f"search only, idle: the default study at least 5x the peer ({statistics.fmean(r['speed'] for r in default):.2f}x)",
            statistics.fmean(r["speed"] for r in default) >= 5,
        ),
        (
            f"the pick reaches the Adam default's test accuracy in at most a fifth of the peer's time "
            f"({_s(worst_reach)} against {_s(peer_reach)})",
            peer_reach is None or worst_reach <= peer_reach / 5,
        ),
    ]
    for text, ok in checks:
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"rows": rows, "target": target, "checks": dict(checks)}, indent=2, default=str)
        )


def _s(seconds: float | None) -> str:
    return "never" if seconds is None or seconds == float("inf") else f"{seconds:.0f}s"


if __name__ == "__main__":
    main()
