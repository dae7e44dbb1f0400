"""Your own data: CSV, Parquet and .npz tables through run, export, train and predict; every bad file refused."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pandas as pd
import pytest

DB = "studies/studies.db"
QUICK = ["--n-trials", "2", "--max-epochs", "2", "--confirm", "0"]


@pytest.fixture(scope="session")
def digits_frame():
    datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn (a test dependency) is absent")
    return datasets.load_digits(as_frame=True).frame


@pytest.fixture
def digits_csv(digits_frame, workdir):
    digits_frame.to_csv(workdir / "digits.csv", index=False)
    return workdir / "digits.csv"


def categorical_frame(n: int, seed: int) -> pd.DataFrame:
    """Text features that decide the label (a string): 'buys' when the colour is red and the size is not S."""
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue"], n)
    size = rng.choice(["S", "M", "L"], n)
    label = np.where((color == "red") & (size != "S"), "buys", "browses")
    return pd.DataFrame({"color": color, "size": size, "noise": rng.normal(size=n), "label": label})


@pytest.fixture
def shop_csv(workdir):
    categorical_frame(400, seed=1).to_csv(workdir / "shop.csv", index=False)
    return workdir / "shop.csv"


def test_digits_study_exported_and_retrained_reaches_95_percent(cli, digits_csv, workdir):
    code, out, err = cli(
        "run",
        "--study",
        "digits",
        "--data",
        digits_csv,
        "--target",
        "target",
        "--n-trials",
        "12",
        "--max-epochs",
        "10",
        "--confirm",
        "3,2",
    )
    assert code == 0, err
    made = optuna.load_study(study_name="digits", storage=f"sqlite:///{DB}").user_attrs["search"]
    assert made["dataset"] == "table" and made["table"]["target"] == "target" and len(made["table"]["sha256"]) == 64
    assert cli("export", "--study", "digits", "--output", "best.yaml")[0] == 0
    import yaml

    data = yaml.safe_load((workdir / "best.yaml").read_text())["data"]
    # The digits' border pixels that are 0 in every image say nothing: left out, with a note.
    assert "note: column 'pixel_0_0' has one value in every row; it is left out" in err
    assert data["file"] == str(digits_csv) and data["target"] == "target" and len(data["columns"]["numeric"]) == 61
    code, out, err = cli("train", "--config", "best.yaml", "--save-model", "m/digits.pt", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert abs(result["test_samples"] - 0.2 * 1797) <= 10 and result["test_accuracy"] >= 0.95, result
    record = json.loads((workdir / "m" / "digits.json").read_text())
    assert record["classes"] == [str(i) for i in range(10)] and record["preprocessing"]["numeric"][0] == "pixel_0_1"

    code, out, err = cli("predict", "--model", "m/digits.pt", "--data", digits_csv, "--output", "p.csv")
    assert code == 0 and "wrote 1,797 predictions" in out, err
    predictions = pd.read_csv(workdir / "p.csv")
    assert list(predictions.columns) == ["predicted", *[f"p_{i}" for i in range(10)]]
    assert np.allclose(predictions.iloc[:, 1:].sum(axis=1), 1.0, atol=1e-4)
    truth = pd.read_csv(digits_csv)["target"]
    assert (predictions["predicted"] == truth).mean() >= 0.95


def test_text_features_decide_the_label(cli, shop_csv, workdir):
    code, _, err = cli(
        "run",
        "--study",
        "shop",
        "--data",
        shop_csv,
        "--target",
        "label",
        "--n-trials",
        "6",
        "--max-epochs",
        "30",  # a table of 320 rows learns the rule in about 100 steps
        "--confirm",
        "0",
        "--space",
        _adam(workdir),
    )
    assert code == 0, err
    assert cli("export", "--study", "shop", "--output", "best.yaml")[0] == 0
    code, out, err = cli("train", "--config", "best.yaml", "--save-model", "m/shop.pt", "--json")
    assert code == 0, err
    assert json.loads(out)["test_accuracy"] >= 0.95  # the rule is in the text columns alone
    new = categorical_frame(20, seed=9).drop(columns=["label"])
    new.loc[0, "color"] = "purple"  # a category the model never saw
    new.to_csv(workdir / "new.csv", index=False)
    code, out, err = cli("predict", "--model", "m/shop.pt", "--data", "new.csv")
    assert code == 0 and "warning: 1 text value was a category the model never saw" in err
    rows = out.strip().splitlines()
    assert rows[0] == "predicted,p_browses,p_buys" and len(rows) == 21
    new.drop(columns=["size"]).to_csv(workdir / "less.csv", index=False)
    code, _, err = cli("predict", "--model", "m/shop.pt", "--data", "less.csv")
    assert code == 1 and "lacks column 'size'" in err and len(err.strip().splitlines()) == 1


def _adam(workdir):
    (workdir / "adam.yaml").write_text("optimizer: adam\nlr: {low: 0.001, high: 0.01, log: true}\nhidden_units: 64\n")
    return "adam.yaml"


def test_parquet_and_npz(cli, workdir, digits_frame):
    pytest.importorskip("pyarrow", reason="pyarrow (the parquet extra) is absent")
    digits_frame.to_parquet(workdir / "d.parquet")
    assert cli("run", "--study", "pq", "--data", "d.parquet", "--target", "target", *QUICK)[0] == 0
    x = digits_frame.drop(columns=["target"]).to_numpy().reshape(-1, 8, 8)  # any shape of x: flattened
    np.savez(workdir / "d.npz", x=x, y=digits_frame["target"].to_numpy())
    code, _, err = cli("run", "--study", "npz", "--data", "d.npz", *QUICK)
    assert code == 0, err
    made = optuna.load_study(study_name="npz", storage=f"sqlite:///{DB}").user_attrs["search"]["table"]
    assert made["columns"]["numeric"][:2] == ["x0", "x1"] and len(made["columns"]["numeric"]) == 64
    assert cli("export", "--study", "npz", "--output", "n.yaml")[0] == 0
    assert cli("train", "--config", "n.yaml", "--save-model", "n.pt")[0] == 0
    np.savez(workdir / "new.npz", x=x[:5])
    code, out, err = cli("predict", "--model", "n.pt", "--data", "new.npz")
    assert code == 0 and len(out.strip().splitlines()) == 6 and out.startswith("predicted,p_0,"), err
    assert cli("export", "--study", "pq", "--output", "p.yaml")[0] == 0
    assert cli("train", "--config", "p.yaml", "--save-model", "p.pt")[0] == 0
    digits_frame.drop(columns=["target"]).head(3).to_parquet(workdir / "new.parquet")
    code, out, err = cli("predict", "--model", "p.pt", "--data", "new.parquet")
    assert code == 0 and len(out.strip().splitlines()) == 4, err


def test_a_continued_study_takes_its_file_and_refuses_a_changed_one(cli, shop_csv, workdir):
    assert cli("run", "--study", "s", "--data", shop_csv, "--target", "label", *QUICK)[0] == 0
    code, out, err = cli("run", "--study", "s", *QUICK)  # no --data: the study's own file
    assert code == 0 and "the study: 4 trials" in out, err
    code, _, err = cli("run", "--study", "s", "--target", "color", *QUICK)
    assert code == 1 and "made with --target label, but this run asks for --target color" in err
    categorical_frame(400, seed=2).to_csv(shop_csv, index=False)
    code, _, err = cli("run", "--study", "s", *QUICK)
    assert code == 1 and f"--data {shop_csv} has changed since study 's' was made" in err
    assert len(err.strip().splitlines()) == 1


def test_a_test_file_of_its_own(cli, workdir):
    categorical_frame(300, seed=1).to_csv(workdir / "train.csv", index=False)
    categorical_frame(50, seed=3).to_csv(workdir / "test.csv", index=False)
    assert (
        cli("run", "--study", "t", "--data", "train.csv", "--test-data", "test.csv", "--target", "label", *QUICK)[0]
        == 0
    )
    assert cli("export", "--study", "t", "--output", "b.yaml")[0] == 0
    code, out, err = cli("train", "--config", "b.yaml", "--json")
    assert code == 0 and json.loads(out)["test_samples"] == 50 and json.loads(out)["train_samples"] == 300, err


def test_a_test_file_takes_the_training_files_columns(cli, workdir):
    # digits' test rows have blank pixels that vary in training: still features, not "missing"
    train, test = categorical_frame(300, seed=1), categorical_frame(50, seed=3)
    train["pixel"], test["pixel"] = [i % 7 for i in range(300)], 0
    train["blank"], test["blank"] = 0, range(50)  # constant in training: left out of the test rows too
    train.to_csv(workdir / "train.csv", index=False)
    test.to_csv(workdir / "test.csv", index=False)
    code, _, err = cli(
        "run", "--study", "t", "--data", "train.csv", "--test-data", "test.csv", "--target", "label", *QUICK
    )
    assert code == 0, err
    test.drop(columns="pixel").to_csv(workdir / "test.csv", index=False)
    code, _, err = cli(
        "run", "--study", "u", "--data", "train.csv", "--test-data", "test.csv", "--target", "label", *QUICK
    )
    assert code == 1 and "--test-data test.csv lacks column 'pixel'" in err, (code, err)


def _write(workdir, name, content):
    path = workdir / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, pd.DataFrame):
        content.to_csv(path, index=False)
    else:
        path.write_text(content)
    return name


def _frame(**columns):
    return pd.DataFrame(columns)


BAD = [
    ("garbage.csv", b"\x00\xff\xfe\x00binary\x00" * 50, ["--target", "y"], "is not a CSV table"),
    ("empty.csv", "", ["--target", "y"], "is empty"),
    ("header.csv", "a,b,y\n", ["--target", "y"], "has a header but no rows"),
    (
        "t.csv",
        _frame(a=[1, 2, 3, 4], label=["x", "y", "x", "y"]),
        ["--target", "lable"],
        "--target 'lable' is not a column of t.csv; did you mean 'label'?",
    ),
    (
        "one.csv",
        _frame(a=[1, 2, 3, 4], y=["x"] * 4),
        ["--target", "y"],
        "has one class ('x'); a classifier needs at least two",
    ),
    (
        "single.csv",
        _frame(a=range(7), y=["x", "x", "x", "y", "y", "y", "z"]),
        ["--target", "y"],
        "class 'z' has a single row",
    ),
    (
        "gaps.csv",
        _frame(a=[1, None, 3, None, 5, 6], b=[1, 2, None, 4, 5, 6], y=["x", "y"] * 3),
        ["--target", "y"],
        "has missing values in a (2), b (1); fill numeric columns with --fill-missing median",
    ),
    ("inf.csv", _frame(a=[1, float("inf"), 3, 4], y=["x", "y"] * 2), ["--target", "y"], "has infinite values in a (1)"),
    (
        "ids.csv",
        _frame(id=[f"c{i}" for i in range(120)], a=range(120), y=["x", "y"] * 60),
        ["--target", "y"],
        "a text column 'id' with 120 distinct values in 120 rows, more than a category can have (50: it looks like an "
        "identifier or free text); drop it with --drop id",
    ),
    ("t.txt", "a,y\n1,x\n", ["--target", "y"], "unknown kind of file; use .csv, .parquet or .npz"),
    (
        "t2.csv",
        _frame(a=[1, 2, 3, 4], y=["x", "y"] * 2),
        ["--target", "y", "--drop", "b"],
        "--drop 'b' is not a column",
    ),
    ("t3.csv", _frame(a=[1, 2, 3, 4], y=["x", "y"] * 2), [], "needs --target COLUMN"),
    (
        "t4.csv",
        _frame(a=[1, 2, 3, 4], y=["x", "y"] * 2),
        ["--target", "y", "--dataset", "mnist"],
        "--data and --dataset mnist are two data sets",
    ),
]


@pytest.mark.parametrize("name, content, extra, message", BAD, ids=[b[0] for b in BAD])
def test_bad_data_is_one_line_and_creates_nothing(cli, workdir, name, content, extra, message):
    _write(workdir, name, content)
    code, out, err = cli("run", "--study", "bad", "--data", name, *extra, *QUICK)
    assert code == 1 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (workdir / "studies").exists()


def test_fill_missing_and_drop_make_it_work(cli, workdir):
    _write(
        workdir,
        "gaps.csv",
        _frame(
            a=[1, None, 3, None, 5, 6, 7, 8],
            b=[f"k{i % 2}" for i in range(8)],
            id=[f"c{i}" for i in range(8)],
            y=["x", "y"] * 4,
        ),
    )
    assert (
        cli(
            "run",
            "--study",
            "g",
            "--data",
            "gaps.csv",
            "--target",
            "y",
            "--fill-missing",
            "median",
            "--drop",
            "id",
            *QUICK,
        )[0]
        == 0
    )


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"a": np.zeros((4, 2))}, "must hold arrays x and y (it holds: a)"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1, 0])}, "x has 4 rows but y has 3"),
    ],
)
def test_bad_npz(cli, workdir, arrays, message):
    np.savez(workdir / "bad.npz", **arrays)
    code, _, err = cli("run", "--study", "bad", "--data", "bad.npz", *QUICK)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1
    assert not (workdir / "studies").exists()


def test_the_encoder_standardises_and_one_hot_encodes_from_training_rows_only():
    from objectives.data._encoder import TableEncoder
    from objectives.data._tables import Table

    train = Table(
        ("n",), np.array([[1.0], [3.0]]), ("c",), np.array([["a"], ["b"]], dtype=object), np.array([0, 1]), ("p", "q")
    )
    encoder = TableEncoder.fit(train)
    x, unseen = encoder.transform(np.array([[2.0], [5.0]]), np.array([["b"], ["zzz"]], dtype=object))
    assert encoder.means == (2.0,) and encoder.stds == (1.0,)
    assert x.tolist() == [[0.0, 0.0, 1.0], [3.0, 0.0, 0.0]] and unseen == 1
    assert TableEncoder.from_dict(json.loads(json.dumps(encoder.to_dict()))) == encoder


def test_the_encoders_bins_are_training_quantiles_given_piecewise_linear():
    """Each numeric column of more than two values: its standardised value, then one feature per quantile bin
    of the training rows (0 below the bin, 1 above it, the position inside it between); a flag has no bins."""
    from objectives.data._encoder import TableEncoder
    from objectives.data._tables import Table

    numbers = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [3.0, 1.0], [4.0, 0.0]])
    train = Table(("n", "flag"), numbers, (), np.zeros((5, 0), dtype=object), np.array([0, 1, 0, 1, 0]), ("p", "q"))
    encoder = TableEncoder.fit(train, bins=4)
    assert encoder.edges == ((0.0, 1.0, 2.0, 3.0, 4.0), ()) and encoder.width == 2 + 4
    x, _ = encoder.transform(np.array([[2.5, 1.0], [-7.0, 0.0], [9.0, 0.0]]), np.zeros((3, 0), dtype=object))
    assert x[0, 2:].tolist() == [1.0, 1.0, 0.5, 0.0]  # inside the third bin, halfway
    assert x[1, 2:].tolist() == [0.0] * 4 and x[2, 2:].tolist() == [1.0] * 4  # beyond the training rows: clipped
    assert x[0, :2].tolist() == pytest.approx(((np.array([2.5, 1.0]) - numbers.mean(0)) / numbers.std(0)).tolist())
    assert TableEncoder.from_dict(json.loads(json.dumps(encoder.to_dict()))) == encoder
    from objectives.data._encoder import _edges

    # A flag whose median falls between its two values: quantiles interpolate 0.5, and still no bins.
    assert _edges(np.array([[0.0], [0.0], [1.0], [1.0]]), 4) == ((),)
    plain = TableEncoder.fit(train)  # bins 0, and a model saved before bins: no "edges" key
    assert plain.width == 2 and "edges" not in plain.to_dict() and TableEncoder.from_dict(plain.to_dict()) == plain


def test_bins_are_recorded_exported_and_predicted_with(cli, workdir):
    """A study's bins reach its record, its export, the retrained model's preprocessing and `predict`, which
    encodes new rows with the training rows' edges; a continued study keeps its own; a bad value is one line."""
    frame = categorical_frame(300, seed=4)
    frame.to_csv(workdir / "shop.csv", index=False)
    assert cli("run", "--study", "b", "--data", "shop.csv", "--target", "label", "--bins", "5", *QUICK)[0] == 0
    made = optuna.load_study(study_name="b", storage=f"sqlite:///{DB}").user_attrs["search"]
    assert made["table"]["bins"] == 5
    code, _, err = cli("run", "--study", "b", "--bins", "8", *QUICK)
    assert code == 1 and "made with `bins` 5, but this run asks for `bins` 8" in err.replace("--bins", "`bins`")
    assert cli("export", "--study", "b", "--output", "best.yaml")[0] == 0
    import yaml

    assert yaml.safe_load((workdir / "best.yaml").read_text())["data"]["bins"] == 5
    code, _, err = cli("train", "--config", "best.yaml", "--save-model", "m/b.pt")
    assert code == 0, err
    edges = json.loads((workdir / "m" / "b.json").read_text())["preprocessing"]["edges"]
    assert [len(e) for e in edges] == [6]  # the noise column: 5 bins; the text columns: none
    code, out, err = cli("predict", "--model", "m/b.pt", "--data", "shop.csv", "--output", "p.csv")
    assert code == 0, err
    # The network takes 2 + 5 + 6 features: predict encodes the rows as the training rows were, bins included.
    assert code == 0 and len(pd.read_csv(workdir / "p.csv")) == 300, err
    code, out, err = cli("run", "--study", "c", "--data", "shop.csv", "--target", "label", "--bins", "1", *QUICK)
    assert code == 1 and err.strip().splitlines() == [
        "search: error: --bins is 1, but must be 0 or an integer from 2 to 256"
    ]
    assert "c" not in optuna.get_all_study_names(f"sqlite:///{DB}")


def test_a_study_made_before_bins_goes_on_without_them(cli, shop_csv, workdir):
    assert cli("run", "--study", "old", "--data", shop_csv, "--target", "label", *QUICK)[0] == 0
    study = optuna.load_study(study_name="old", storage=f"sqlite:///{DB}")
    made = study.user_attrs["search"]
    assert made["table"].pop("bins") == 32  # the default; an earlier version recorded none
    study.set_user_attr("search", made)
    code, out, err = cli("run", "--study", "old", *QUICK)
    assert code == 0, err
    assert cli("export", "--study", "old", "--output", "old.yaml")[0] == 0
    assert cli("train", "--config", "old.yaml", "--save-model", "m/old.pt")[0] == 0
    assert "edges" not in json.loads((workdir / "m" / "old.json").read_text())["preprocessing"]


# --- what a close read found (issue 18): each test fails on the code before it -------------------------------


def _run_and_export(cli, *extra):
    code, out, err = cli("run", "--study", "t", *extra, *QUICK)
    assert code == 0, err
    assert cli("export", "--study", "t", "--output", "best.yaml")[0] == 0


def test_train_refuses_a_file_whose_rows_changed_since_the_export(cli, workdir):
    categorical_frame(200, seed=3).to_csv(workdir / "shop.csv", index=False)
    _run_and_export(cli, "--data", "shop.csv", "--target", "label")
    pd.read_csv(workdir / "shop.csv").sample(frac=1.0, random_state=1).to_csv(workdir / "shop.csv", index=False)
    code, out, err = cli("train", "--config", "best.yaml", "--save-model", "m/t.pt")
    assert code == 1 and "shop.csv has changed since the export" in err and "test rows may have been trained on" in err
    assert not (workdir / "m").exists()


def test_every_statistic_of_the_preprocessing_comes_from_training_rows(workdir):
    """Gaps take the training rows' median, and the means and stds are the training rows' own."""
    from objectives import DataConfig, load_splits
    from objectives.data._load import table_parts

    rng = np.random.default_rng(0)
    a = rng.normal(size=300)
    a[::7] = np.nan
    frame = pd.DataFrame({"a": a, "b": rng.normal(size=300), "y": np.where(rng.normal(size=300) > 0, "p", "n")})
    frame.loc[frame.index[-60:], "a"] = 1000.0  # extreme values; some land in the test and validation rows
    frame.to_csv(workdir / "g.csv", index=False)
    config = DataConfig(data_file="g.csv", target="y", fill_missing="median")
    splits = load_splits(config)
    pool, _ = table_parts(config)
    from objectives.data import SEARCH, pool_indices

    train, _ = pool_indices(pool.labels, 0.1, 0, True, SEARCH)
    rows = pool.numeric[train, 0]
    median = float(np.median(rows[~np.isnan(rows)]))
    encoder = splits.encoder
    assert encoder["medians"][0] == pytest.approx(median)
    filled = np.where(np.isnan(rows), median, rows)
    assert encoder["means"][0] == pytest.approx(filled.mean()) and encoder["stds"][0] == pytest.approx(filled.std())
    everything = pool.numeric[:, 0]
    assert encoder["medians"][0] != pytest.approx(float(np.nanmedian(everything)))  # the whole file's would differ


def test_predict_fills_a_gap_as_training_did_and_keeps_categories_as_text(cli, workdir):
    rng = np.random.default_rng(5)
    n = 240
    size = rng.choice(["10", "12", "14"], n)  # numbers that are categories (shoe sizes, say)
    frame = pd.DataFrame(
        {
            "size": np.where(rng.random(n) < 0.05, "x", size),
            "w": rng.normal(size=n),
            "y": np.where(size == "12", "fits", "not"),
        }
    )
    frame.loc[::9, "w"] = np.nan
    frame.to_csv(workdir / "s.csv", index=False)
    _run_and_export(cli, "--data", "s.csv", "--target", "y", "--fill-missing", "median")
    assert cli("train", "--config", "best.yaml", "--save-model", "m/s.pt")[0] == 0
    record = json.loads((workdir / "m" / "s.json").read_text())
    median = record["preprocessing"]["medians"][0]
    # A new file whose size column holds only numbers, with a gap: pandas alone would read 10.0, 12.0.
    pd.DataFrame({"size": ["10", "12", None, "14"], "w": [None, 0.5, 0.1, 0.2]}).to_csv(
        workdir / "new.csv", index=False
    )
    code, out, err = cli("predict", "--model", "m/s.pt", "--data", "new.csv")
    assert code == 0, err
    assert "categories the model never saw" not in err.replace(
        "1 text value was a category", ""
    )  # the gap's "(missing)" only
    assert "1 missing number was filled with the training rows' median" in err
    from objectives.data._encoder import TableEncoder

    encoder = TableEncoder.from_dict(record["preprocessing"])
    assert encoder.fill(np.array([[np.nan]]))[0][0, 0] == median != encoder.means[0]


def test_predict_refuses_a_file_of_another_kind_unless_asked(cli, shop_csv, workdir):
    _run_and_export(cli, "--data", "shop.csv", "--target", "label")
    assert cli("train", "--config", "best.yaml", "--save-model", "m/shop.pt")[0] == 0
    other = pd.DataFrame({"color": ["teal", "navy", "olive", "red"], "size": ["S", "M", "L", "S"], "noise": [0.0] * 4})
    other.to_csv(workdir / "other.csv", index=False)
    code, _, err = cli("predict", "--model", "m/shop.pt", "--data", "other.csv")
    assert code == 1 and "3 of 4 values of text column 'color' are categories the model never saw" in err
    code, out, err = cli("predict", "--model", "m/shop.pt", "--data", "other.csv", "--accept-unseen")
    assert code == 0 and len(out.strip().splitlines()) == 5 and "3 text values were categories" in err


def test_a_text_column_with_too_many_values_is_refused(cli, workdir):
    """1,000 values in 2,000 rows: under half the rows (the old bound) but far more than a category has."""
    rng = np.random.default_rng(1)
    pd.DataFrame(
        {"city": [f"c{i % 1000}" for i in range(2000)], "a": rng.normal(size=2000), "y": rng.choice(["p", "n"], 2000)}
    ).to_csv(workdir / "c.csv", index=False)
    code, _, err = cli("run", "--study", "c", "--data", "c.csv", "--target", "y", *QUICK)
    assert code == 1 and "text column 'city' with 1,000 distinct values in 2,000 rows" in err and "--drop city" in err
    assert not (workdir / "studies").exists()


def test_every_problem_of_a_file_comes_in_one_message(cli, workdir):
    frame = pd.DataFrame(
        {"id": [f"u{i}" for i in range(120)], "a": [1.0, None] * 60, "k": [5] * 120, "y": ["p", "n"] * 60}
    )
    frame.to_csv(workdir / "messy.csv", index=False)
    code, _, err = cli("run", "--study", "m", "--data", "messy.csv", "--target", "y", *QUICK)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "has 2 problems: (1) missing values in a (60)" in err and "(2) a text column 'id'" in err


def test_a_semicolon_separated_csv_is_read(cli, workdir):
    categorical_frame(120, seed=2).to_csv(workdir / "semi.csv", index=False, sep=";")
    code, out, err = cli("run", "--study", "s", "--data", "semi.csv", "--target", "label", *QUICK)
    assert code == 0, err


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--target", "y"], "--target"),
        (["--test-fraction", "0.3"], "--test-fraction"),
        (["--drop", "a"], "--drop"),
        (["--task", "regression"], "--task"),
    ],
)
def test_flags_that_do_not_apply_are_refused(cli, workdir, flags, named):
    code, _, err = cli("run", "--study", "x", "--dataset", "synthetic", *flags, *QUICK)
    assert code == 1 and f"{named} applies to your own data (--data), not to --dataset synthetic" in err
    assert not (workdir / "studies").exists()


BAD_NPZ = [
    ("y2d", lambda: dict(x=np.zeros((10, 3)), y=np.zeros((10, 2))), "y has shape (10, 2), but must hold one label"),
    (
        "xtext",
        lambda: dict(x=np.array([["a", "b"]] * 10), y=np.arange(10) % 2),
        "x holds <U1 values, but must hold numbers",
    ),
    ("x1d", lambda: dict(x=np.zeros(10), y=np.arange(10) % 2), "x has shape (10,), but must have one row per sample"),
    (
        "objects",
        lambda: dict(x=np.array([[1, None]] * 10, dtype=object), y=np.arange(10) % 2),
        "not an .npz archive of plain arrays",
    ),
]


@pytest.mark.parametrize("name, arrays, message", BAD_NPZ, ids=[b[0] for b in BAD_NPZ])
def test_every_bad_npz_is_one_line(cli, workdir, name, arrays, message):
    np.savez(workdir / f"{name}.npz", **arrays())
    code, out, err = cli("run", "--study", "n", "--data", f"{name}.npz", *QUICK)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_test_split_is_the_same_in_every_process(workdir):
    """Carved with a fixed seed: two fresh processes (no cache between them) hold out the same rows."""
    import subprocess
    import sys

    categorical_frame(300, seed=4).to_csv(workdir / "shop.csv", index=False)
    script = (
        "import numpy, sys; from objectives.data._load import table_parts; from objectives import DataConfig; "
        "numpy.random.seed(int(sys.argv[1])); _, test = table_parts(DataConfig(data_file='shop.csv', target='label')); "
        "print(test.numeric[:, 0].round(6).tolist())"
    )
    held = [
        subprocess.run(
            [sys.executable, "-c", script, str(seed)], cwd=workdir, capture_output=True, text=True, check=True
        ).stdout
        for seed in (1, 2)
    ]
    assert held[0] == held[1] and len(json.loads(held[0])) == 60


def test_the_encoder_standardises_with_the_training_rows_and_keeps_a_constant_column_finite():
    import numpy as np

    from objectives.data._encoder import TableEncoder
    from objectives.data._tables import Table

    rng = np.random.default_rng(0)
    numeric = np.column_stack([rng.normal(50, 7, 40), np.full(40, 3.0)])  # the second is constant in these rows
    table = Table(("x", "flat"), numeric, (), np.empty((40, 0), dtype=object), np.zeros(40, dtype=np.int64), ("a", "b"))
    encoder = TableEncoder.fit(table)
    out, unseen = encoder.transform(numeric, table.text)
    assert unseen == 0 and np.isfinite(out).all()
    assert out[:, 0].mean() == pytest.approx(0, abs=1e-5) and out[:, 0].std() == pytest.approx(1, abs=1e-5)
    assert (out[:, 1] == 0).all()
    later, _ = encoder.transform(
        np.array([[57.0, 4.0]]), np.empty((1, 0), dtype=object)
    )  # new rows: the training statistics
    assert later[0, 0] == pytest.approx((57 - numeric[:, 0].mean()) / numeric[:, 0].std(), rel=1e-5)


def test_each_text_column_has_its_own_one_hot_block():
    import numpy as np

    from objectives.data._encoder import TableEncoder
    from objectives.data._tables import Table

    text = np.array([["red", "S"], ["blue", "M"], ["green", "L"], ["red", "XL"]], dtype=object)
    table = Table(("x",), np.arange(4.0).reshape(4, 1), ("color", "size"), text, np.zeros(4, dtype=np.int64), ("a",))
    encoder = TableEncoder.fit(table)
    out, _ = encoder.transform(table.numeric, text)
    assert encoder.width == out.shape[1] == 1 + 3 + 4
    colors, sizes = out[:, 1:4], out[:, 4:8]  # categories sorted: blue green red; L M S XL
    assert (colors.sum(axis=1) == 1).all() and (sizes.sum(axis=1) == 1).all()
    assert colors[0].tolist() == [0, 0, 1] and sizes[3].tolist() == [0, 0, 0, 1]


def test_a_gap_in_a_text_column_is_named_unless_filled(workdir):
    from objectives import DataError
    from objectives.data._tables import read_table

    frame = categorical_frame(60, seed=4)
    frame.loc[3, "color"] = np.nan
    frame.to_csv(workdir / "gap.csv", index=False)
    with pytest.raises(DataError, match="missing values in text column color \\(1\\)"):
        read_table(str(workdir / "gap.csv"), "label")
    assert read_table(str(workdir / "gap.csv"), "label", fill_missing="median").rows == 60


def test_a_regression_target_that_is_not_a_number_is_named(workdir):
    from objectives import DataError
    from objectives.data._tables import read_table

    (workdir / "r.csv").write_text("x,y\n1,2.5\n2,abc\n3,4\n")

    with pytest.raises(DataError, match="`task` regression needs a numeric `target`, but 'y' holds 'abc'"):
        read_table(str(workdir / "r.csv"), "y", task="regression")
