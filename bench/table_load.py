"""Reading a big table and starting a study on it, against pandas.read_csv alone on the same file.

    .venv/bin/python bench/table_load.py              # 1,000,000 rows x 50 columns (about 2 minutes)
    .venv/bin/python bench/table_load.py --rows 100000

Prints the seconds of `pandas.read_csv`, of everything `search run --data` does before its
first trial (read, content hash, checks, test and validation splits, encoding, opening the
study), and their ratio, measured in the same process on the same file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.csv"
        rng = np.random.default_rng(0)
        x = rng.normal(size=(args.rows, args.columns - 1)).astype(np.float32)
        frame = pd.DataFrame(x, columns=[f"f{j}" for j in range(args.columns - 1)])
        frame["y"] = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
        frame.to_csv(path, index=False, float_format="%.5f")
        print(f"{args.rows:,} rows x {args.columns} columns, {path.stat().st_size / 1e6:,.0f} MB", flush=True)

        started = time.perf_counter()
        pd.read_csv(path)
        read_csv = time.perf_counter() - started

        from objectives import DataConfig
        from search import RunConfig
        from search.study._run import prepare

        config = RunConfig(
            study="big",
            storage=f"sqlite:///{tmp}/s.db",
            n_trials=1,
            data=DataConfig(data_file=str(path), target="y"),
            device="cpu",
        )
        started = time.perf_counter()
        prepare(config)
        ours = time.perf_counter() - started
    print(f"pandas.read_csv alone:                      {read_csv:7.2f} s")
    print(f"search run --data, up to its first trial:   {ours:7.2f} s  ({ours / read_csv:.2f}x read_csv)")


if __name__ == "__main__":
    main()
