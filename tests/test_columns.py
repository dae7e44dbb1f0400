"""A user's file as it really is (objectives/data/_columns.py and the table path): a saved index, a typo in a
column of numbers, rows without a target, another file named for a study's own."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

QUICK = ["--n-trials", "1", "--max-epochs", "1", "--confirm", "0"]
DB = "sqlite:///studies/studies.db"


def frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Two numeric features and a text one; the label follows the first."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    return pd.DataFrame(
        {"a": a, "b": rng.normal(size=n), "c": rng.choice(["p", "q"], n), "label": np.where(a > 0, "yes", "no")}
    )


def exported_columns(cli, study: str) -> dict:
    assert cli("export", "--study", study, "--output", f"{study}.yaml")[0] == 0
    with open(f"{study}.yaml") as f:
        return yaml.safe_load(f)["data"]["columns"]


@pytest.mark.parametrize(
    "write",
    [
        lambda f, p: f.to_csv(p),  # pandas' own index: a blank header, 'Unnamed: 0'
        lambda f, p: f[f["b"] > -1.5].to_csv(p),  # an index with gaps, after some rows were removed
        lambda f, p: f.assign(row=range(1, len(f) + 1)).to_csv(p, index=False),  # R's rownames: 1..n
    ],
    ids=["to_csv", "filtered", "rownames"],
)
def test_a_column_that_numbers_the_rows_is_left_out_with_a_note(cli, workdir, write):
    write(frame(), workdir / "t.csv")
    code, _, err = cli("run", "--study", "t", "--data", "t.csv", "--target", "label", *QUICK)
    assert code == 0, err
    assert "numbers the rows (an index saved with the file); it is left out" in err
    assert exported_columns(cli, "t") == {"numeric": ["a", "b"], "text": ["c"]}


def test_a_feature_that_merely_counts_a_few_rows_stays(cli, workdir):
    frame(12).assign(step=range(12)).to_csv(workdir / "t.csv", index=False)  # 12 rows: too few to call it an index
    assert cli("run", "--study", "t", "--data", "t.csv", "--target", "label", *QUICK)[0] == 0
    assert "step" in exported_columns(cli, "t")["numeric"]


def test_a_study_goes_on_with_the_columns_it_recorded(cli, workdir):
    """A study made while a saved index was still a feature (as earlier versions did) keeps it as one."""
    frame().to_csv(workdir / "t.csv")
    assert cli("run", "--study", "t", "--data", "t.csv", "--target", "label", *QUICK)[0] == 0
    study = optuna.load_study(study_name="t", storage=DB)
    made = study.user_attrs["search"]
    made["table"]["columns"]["numeric"] = ["Unnamed: 0", "a", "b"]
    study.set_user_attr("search", made)
    code, _, err = cli("run", "--study", "t", *QUICK)
    assert code == 0, err  # not "made from another table"
    assert exported_columns(cli, "t")["numeric"] == ["Unnamed: 0", "a", "b"]


def test_a_typo_in_a_column_of_numbers_is_named_with_its_line(cli, workdir):
    f = frame().astype({"a": object})
    f.loc[57, "a"] = "0.1O"
    f.to_csv(workdir / "t.csv", index=False)
    code, _, err = cli("run", "--study", "t", "--data", "t.csv", "--target", "label", *QUICK)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "a column of numbers 'a' with 1 value that is not a number: '0.1O' on line 59" in err
    assert "identifier" not in err and "--drop a" not in err  # a good feature is not to be dropped
    assert not (workdir / "studies" / "studies.db").exists()


def test_rows_without_a_target_are_refused_or_left_out_when_asked(cli, workdir):
    f = frame()
    f.loc[[3, 9, 20], "label"] = None
    f.to_csv(workdir / "t.csv", index=False)
    code, _, err = cli("run", "--study", "t", "--data", "t.csv", "--target", "label", *QUICK)
    assert code == 1 and "rows without a --target 'label' value (3); remove those rows, or --drop-missing-target" in err
    args = ["run", "--study", "t", "--data", "t.csv", "--target", "label", "--drop-missing-target", *QUICK]
    code, _, err = cli(*args)
    assert code == 0 and "3 rows without a value of the target 'label' are left out" in err, err
    assert optuna.load_study(study_name="t", storage=DB).user_attrs["search"]["rows"] == 93  # 117 less 24 test rows
    code, _, err = cli("run", "--study", "t", *QUICK)  # the study keeps its choice
    assert code == 0 and "are left out" in err, err
    assert cli("export", "--study", "t", "--output", "t.yaml")[0] == 0
    code, out, err = cli("train", "--config", "t.yaml", "--json")
    assert code == 0, err
    assert json.loads(out)["train_samples"] + json.loads(out)["test_samples"] == 117


def test_another_file_is_not_called_a_changed_one(cli, workdir):
    frame().to_csv(workdir / "t.csv", index=False)
    frame(seed=1).to_csv(workdir / "other.csv", index=False)
    assert cli("run", "--study", "t", "--data", "t.csv", "--target", "label", *QUICK)[0] == 0
    code, _, err = cli("run", "--study", "t", "--data", "other.csv", *QUICK)
    assert code == 1 and "--data other.csv is another file than the one study 't' was made from (t.csv" in err, err
    assert "changed" not in err
    frame(seed=2).to_csv(workdir / "t.csv", index=False)
    code, _, err = cli("run", "--study", "t", *QUICK)
    assert code == 1 and "--data t.csv has changed since study 't' was made" in err, err


def test_a_continued_study_prints_its_own_metric(cli, workdir):
    pytest.importorskip("sklearn.datasets").load_diabetes(as_frame=True).frame.to_csv(workdir / "d.csv", index=False)
    assert cli("run", "--study", "d", "--data", "d.csv", "--target", "target", "--task", "regression", *QUICK)[0] == 0
    code, out, err = cli("run", "--study", "d", *QUICK)  # the task and metric come from the study's record
    assert code == 0 and "val_rmse" in out and "val_acc" not in out, (out, err)
