"""The tuned MLP against gradient-boosted trees on scikit-learn's bundled real tables, at the tool's defaults.

    .venv/bin/python bench/tables.py                    # 5 tables x 3 seeds; about 15 minutes on 2 cores
    .venv/bin/python bench/tables.py --quick            # a smoke test
    .venv/bin/python bench/tables.py --compare-space    # also the MLP without the regularisation keys (pinned width,
                                                        # depth, no dropout, no weight decay): does searching them help?

Per table and seed, the rows are split into a pool and a test split of the seed's own; a study
runs on the pool at the defaults (`search.tune`, confirmation and yardstick included); the pick
is retrained as `search train` does and scored on the test split; scikit-learn's
HistGradientBoosting at its defaults is fitted on the same pool and scored on the same test split.
Classification tables are scored by accuracy, diabetes (regression) by R².

Targets (issue 19): the tuned MLP within 1 point of the yardstick on average over the
classification tables, and within 0.05 of its R² on diabetes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The MLP as an image set's default has it: width and depth pinned, no dropout, no weight decay.
PLAIN_SPACE = {"hidden_units": 512, "hidden_layers": 2, "dropout": 0.0, "weight_decay": 0.0}


def tables() -> dict:
    from sklearn import datasets

    return {
        name: (loader(as_frame=True).frame, task)
        for name, loader, task in (
            ("iris", datasets.load_iris, "classification"),
            ("wine", datasets.load_wine, "classification"),
            ("breast cancer", datasets.load_breast_cancer, "classification"),
            ("digits", datasets.load_digits, "classification"),
            ("diabetes", datasets.load_diabetes, "regression"),
        )
    }


def split(frame, task: str, seed: int):
    import numpy as np

    from objectives.data._splits import stratified_split

    y = frame["target"].to_numpy()
    if task == "regression":
        return stratified_split(y, 0.2, 2000 + seed, "test split", ())
    values = np.unique(y)
    ids = np.searchsorted(values, y)
    return stratified_split(ids, 0.2, 2000 + seed, "test split", tuple(map(str, values)))


def yardstick_test(pool, test, task: str, metric: str) -> float:
    """HistGradientBoosting (defaults) fitted on the pool, scored on the test split by the study's metric."""
    import numpy as np
    import torch
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from objectives._metrics import classification_metric, regression_metric

    x, y = pool.drop(columns=["target"]).to_numpy(), pool["target"].to_numpy()
    tx, ty = test.drop(columns=["target"]).to_numpy(), test["target"].to_numpy()
    if task == "regression":
        predicted = HistGradientBoostingRegressor(random_state=0).fit(x, y).predict(tx)
        return regression_metric(
            metric, torch.from_numpy(predicted), torch.from_numpy(ty.astype(float)), float(y.mean())
        )
    values = np.unique(y)
    model = HistGradientBoostingClassifier(random_state=0).fit(x, np.searchsorted(values, y))
    probs = np.maximum(model.predict_proba(tx), 1e-15)
    return classification_metric(
        metric, torch.from_numpy(np.log(probs)), torch.from_numpy(np.searchsorted(values, ty)), len(values)
    )


def one(name: str, frame, task: str, seed: int, trials: int, work: Path, space: dict | None, device: str) -> dict:
    import search

    os.chdir(work)
    pool_rows, test_rows = split(frame, task, seed)
    pool, test = frame.iloc[pool_rows], frame.iloc[test_rows]
    metric = "r2" if task == "regression" else "accuracy"
    study = search.tune(
        pool,
        "target",
        test_data=test,
        task=task,
        metric=metric,
        n_trials=trials,
        seed=seed,
        study=f"{name}-{seed}-{'plain' if space else 'default'}",
        space=space,
        device=device,
    )
    pick = study.pick
    test_value = study.train(device=device).test["test_value"]
    return {
        "table": name,
        "seed": seed,
        "metric": metric,
        "mlp test": test_value,
        "quoted": pick.quote.mean,
        "yardstick test": yardstick_test(pool, test, task, metric),
        "yardstick quoted": pick.yardstick.mean if pick.yardstick else None,
        "search s": study.summary.search_seconds,
        "total s": study.summary.wall_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--compare-space", action="store_true", help="also run the MLP without the regularisation keys")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--only", help="comma-separated tables")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.json:  # each study runs in a folder of its own: the file is where the user named it
        args.json = str(Path(args.json).resolve())
    seeds, trials = (1, 8) if args.quick else (args.seeds, args.trials)
    sets = tables()
    if args.only:
        sets = {k: v for k, v in sets.items() if k in args.only.split(",")}
    spaces = {"default": None, **({"plain": PLAIN_SPACE} if args.compare_space else {})}
    rows = []
    print(
        f"{trials} trials per study, the defaults (confirmation, yardstick); {seeds} seeds per table; device {args.device}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, (frame, task) in sets.items():
            for label, space in spaces.items():
                for seed in range(seeds):
                    row = {**one(name, frame, task, seed, trials, Path(tmp), space, args.device), "space": label}
                    rows.append(row)
                    print(
                        f"{name} ({label} space) seed {seed}: MLP test {row['mlp test']:.4f}, quoted {row['quoted']:.4f}, "
                        f"yardstick test {row['yardstick test']:.4f}; {row['total s']:.0f}s",
                        flush=True,
                    )
    print(f"\n{'table':<15}{'space':<9}{'metric':<10}{'MLP test':>10}{'quoted':>9}{'HGB test':>10}{'MLP - HGB':>11}")
    leads = {}
    for name, label in dict.fromkeys((r["table"], r["space"]) for r in rows):
        mine = [r for r in rows if r["table"] == name and r["space"] == label]
        mean = {k: statistics.fmean(r[k] for r in mine) for k in ("mlp test", "quoted", "yardstick test")}
        leads[(name, label)] = mean["mlp test"] - mean["yardstick test"]
        print(
            f"{name:<15}{label:<9}{mine[0]['metric']:<10}{mean['mlp test']:>10.4f}{mean['quoted']:>9.4f}"
            f"{mean['yardstick test']:>10.4f}{leads[(name, label)]:>+11.4f}"
        )
    classification = [v for (n, label), v in leads.items() if label == "default" and n != "diabetes"]
    checks = []
    if classification:
        gap = statistics.fmean(classification)
        checks.append(
            (
                f"classification: the tuned MLP within 1 point of the yardstick on average ({gap * 100:+.2f} points)",
                gap >= -0.01,
            )
        )
    if ("diabetes", "default") in leads:
        checks.append(
            (
                f"diabetes: the MLP's R² within 0.05 of the yardstick's ({leads[('diabetes', 'default')]:+.3f})",
                leads[("diabetes", "default")] >= -0.05,
            )
        )
    for text, ok in checks:
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "checks": dict(checks)}, indent=2, default=str))


if __name__ == "__main__":
    main()
