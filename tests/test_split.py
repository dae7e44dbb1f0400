"""`search split` (search/trained/_split.py): a table study's own test rows, and the rows it searched on, as files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

QUICK = ["--n-trials", "1", "--max-epochs", "1", "--confirm", "0"]


def table(n: int = 150, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    return pd.DataFrame({"a": a, "b": rng.normal(size=n), "label": np.where(a > 0, "yes", "no")})


def test_the_written_rows_are_the_studys_own_split(cli, workdir):
    rows = table()
    rows.loc[[5, 70], "label"] = None
    rows.to_csv(workdir / "t.csv", index=False)
    run = ["run", "--study", "t", "--data", "t.csv", "--target", "label", "--drop-missing-target", *QUICK]
    assert cli(*run)[0] == 0
    code, out, err = cli("split", "--study", "t", "--output", "test.csv", "--train-output", "pool.parquet")
    assert code == 0, err
    assert "wrote the 30 test rows of 't' (from t.csv) to test.csv" in out, out
    test, pool = pd.read_csv(workdir / "test.csv"), pd.read_parquet(workdir / "pool.parquet")
    assert list(test.columns) == ["a", "b", "label"] and len(test) + len(pool) == 148  # two rows had no label
    assert set(test["a"]).isdisjoint(pool["a"]) and set(test["a"]) | set(pool["a"]) == set(
        rows["a"][rows["label"].notna()]
    )
    from objectives import DataConfig
    from objectives.data import table_parts

    _, held = table_parts(DataConfig(data_file="t.csv", target="label", drop_missing_target=True))
    assert sorted(held.numeric[:, 0]) == sorted(test["a"])  # the rows the tool scores its test figure on
    assert cli("export", "--study", "t", "--output", "t.yaml")[0] == 0
    assert json.loads(cli("train", "--config", "t.yaml", "--json")[1])["test_samples"] == len(test)


def test_a_study_with_its_own_test_file_writes_that_files_rows(cli, workdir):
    table(120).to_csv(workdir / "t.csv", index=False)
    table(40, seed=1).to_csv(workdir / "held.csv", index=False)
    assert cli("run", "--study", "t", "--data", "t.csv", "--test-data", "held.csv", "--target", "label", *QUICK)[0] == 0
    assert cli("split", "--study", "t", "--output", "test.csv")[0] == 0
    assert pd.read_csv(workdir / "test.csv").equals(pd.read_csv(workdir / "held.csv"))


@pytest.mark.parametrize(
    "setup, args, message",
    [
        ("image", ["--output", "x.csv"], "study 's' is on the image set synthetic"),
        ("table", ["--output", "x.txt"], "--output x.txt: write a .csv or .parquet file"),
        ("changed", ["--output", "x.csv"], "t.csv has changed since"),
    ],
)
def test_what_cannot_be_split_is_one_line_and_writes_nothing(cli, workdir, setup, args, message):
    if setup == "image":
        assert cli("run", "--study", "s", "--dataset", "synthetic", *QUICK)[0] == 0
    else:
        table().to_csv(workdir / "t.csv", index=False)
        assert cli("run", "--study", "s", "--data", "t.csv", "--target", "label", *QUICK)[0] == 0
        if setup == "changed":
            table(seed=3).to_csv(workdir / "t.csv", index=False)
    code, _, err = cli("split", "--study", "s", *args)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err
    assert not list(workdir.glob("x.*"))
