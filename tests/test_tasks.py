"""Tasks and metrics: each metric against scikit-learn's, directions, regression end to end, the yardstick."""

from __future__ import annotations

import json
import re

import numpy as np
import optuna
import pandas as pd
import pytest
import torch

from objectives import METRICS, SpaceError, metric_named
from objectives._metrics import classification_metric, regression_metric

metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is absent")
QUICK = ["--n-trials", "3", "--max-epochs", "3", "--confirm", "0"]
DB = "sqlite:///studies/studies.db"


@pytest.mark.parametrize("classes", [2, 4])
def test_classification_metrics_agree_with_scikit_learn(classes):
    rng = np.random.default_rng(classes)
    y = rng.integers(0, classes, 300)
    logits = torch.from_numpy(rng.normal(size=(300, classes)) + np.eye(classes)[y] * 1.5)
    probs = torch.softmax(logits.double(), dim=1).numpy()
    labels = torch.from_numpy(y)
    assert classification_metric("accuracy", logits, labels, classes) == pytest.approx(
        metrics.accuracy_score(y, probs.argmax(1))
    )
    assert classification_metric("balanced_accuracy", logits, labels, classes) == pytest.approx(
        metrics.balanced_accuracy_score(y, probs.argmax(1))
    )
    assert classification_metric("log_loss", logits, labels, classes) == pytest.approx(
        metrics.log_loss(y, probs), rel=1e-6
    )
    expected = (
        metrics.roc_auc_score(y, probs[:, 1]) if classes == 2 else metrics.roc_auc_score(y, probs, multi_class="ovr")
    )
    assert classification_metric("roc_auc", logits, labels, classes) == pytest.approx(expected, rel=1e-9)


def test_auc_counts_ties_as_half():
    scores = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 2.0], [0.0, 0.0]])  # logits: a tie between rows 0 and 1
    y = np.array([1, 0, 1, 0])
    probs = torch.softmax(scores.double(), dim=1).numpy()
    assert classification_metric("roc_auc", scores, torch.from_numpy(y), 2) == pytest.approx(
        metrics.roc_auc_score(y, probs[:, 1])
    )


def test_regression_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.normal(size=200) * 10 + 50
    predicted = y + rng.normal(size=200) * 3
    p, t = torch.from_numpy(predicted), torch.from_numpy(y)
    assert regression_metric("rmse", p, t, 0.0) == pytest.approx(metrics.mean_squared_error(y, predicted) ** 0.5)
    assert regression_metric("mae", p, t, 0.0) == pytest.approx(metrics.mean_absolute_error(y, predicted))
    assert regression_metric("r2", p, t, 0.0) == pytest.approx(metrics.r2_score(y, predicted))


def test_a_diverged_network_gets_a_finite_worst_figure():
    logits = torch.full((4, 3), float("nan"))
    y = torch.tensor([0, 1, 2, 0])
    assert classification_metric("accuracy", logits, y, 3) == 0.0  # a row that is not finite counts as wrong
    assert classification_metric("log_loss", logits, y, 3) == pytest.approx(np.log(3))  # uniform probabilities
    predicted = torch.tensor([float("inf"), 1.0])
    assert (
        regression_metric("rmse", predicted, torch.tensor([2.0, 1.0]), fallback=2.0) == 0.0
    )  # the training mean stands in


def test_each_metric_has_its_direction_and_task():
    assert {m.name: m.direction for m in METRICS.values()} == {
        "accuracy": "maximize",
        "balanced_accuracy": "maximize",
        "log_loss": "minimize",
        "roc_auc": "maximize",
        "rmse": "minimize",
        "mae": "minimize",
        "r2": "maximize",
    }
    assert metric_named(None, "regression").name == "rmse" and metric_named(None).name == "accuracy"
    with pytest.raises(SpaceError, match="`metric` rmse scores regression, but this is classification"):
        metric_named("rmse", "classification")


@pytest.fixture
def diabetes_csv(workdir):
    datasets = pytest.importorskip("sklearn.datasets")
    datasets.load_diabetes(as_frame=True).frame.to_csv(workdir / "diabetes.csv", index=False)
    return "diabetes.csv"


def test_a_continuous_target_is_refused_naming_the_flag(cli, diabetes_csv, workdir):
    code, _, err = cli("run", "--study", "d", "--data", diabetes_csv, "--target", "target", *QUICK)
    assert code == 1 and "looks like a number to predict" in err and "--task regression" in err
    assert not (workdir / "studies").exists()


def test_regression_end_to_end_in_the_target_s_units(cli, diabetes_csv, workdir):
    code, out, err = cli(
        "run",
        "--study",
        "d",
        "--data",
        diabetes_csv,
        "--target",
        "target",
        "--task",
        "regression",
        "--n-trials",
        "4",
        "--max-epochs",
        "15",
        "--confirm",
        "2,2",
        "--baseline",
        "none",
    )
    assert code == 0, err
    study = optuna.load_study(study_name="d", storage=DB)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE and study.metric_names == ["validation RMSE"]
    assert "val_rmse" in out and "validation RMSE" in out and 20 < study.best_value < 200  # RMSE in the target's units
    summary = study.user_attrs["search:confirmation"]
    assert summary["metric"] == "rmse" and summary["direction"] == "minimize"
    means = [c["mean"] for c in summary["ranking"] if not c["dropped"]]
    assert means == sorted(means)  # lower is better: the pick first
    assert cli("export", "--study", "d", "--output", "d.yaml")[0] == 0
    code, out, err = cli("train", "--config", "d.yaml", "--save-model", "m/d.pt", "--json")
    assert code == 0, err
    figures = json.loads(out)
    assert figures["metric"] == "rmse" and 20 < figures["test_rmse"] < 200
    new = pd.read_csv(workdir / diabetes_csv).drop(columns=["target"]).head(5)
    new.to_csv(workdir / "new.csv", index=False)
    code, out, err = cli("predict", "--model", "m/d.pt", "--data", "new.csv")
    assert code == 0, err
    predicted = pd.read_csv(__import__("io").StringIO(out))
    assert list(predicted.columns) == ["predicted"] and predicted["predicted"].between(0, 400).all()
    assert cli("report", "--study", "d", "--output", "d.html")[0] == 0
    page = (workdir / "d.html").read_text()
    assert "variation in the validation RMSE" in page and "The validation RMSE against each parameter" in page
    prose = re.sub(r"<script.*?</script>", "", page, flags=re.S)  # the words, not plotly's code
    assert "accuracy" not in prose.lower()  # a regression study's report never speaks of accuracy


def test_a_metric_of_the_user_s_choice_orders_the_study(cli, workdir):
    pytest.importorskip("sklearn.datasets").load_breast_cancer(as_frame=True).frame.to_csv(
        workdir / "c.csv", index=False
    )
    code, out, err = cli("run", "--study", "c", "--data", "c.csv", "--target", "target", "--metric", "log_loss", *QUICK)
    assert code == 0, err
    study = optuna.load_study(study_name="c", storage=DB)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE and study.metric_names == ["validation log loss"]
    assert "val_logloss" in out and "best by search value" in out
    code, out, _ = cli("best", "--study", "c", "--json")
    assert json.loads(out)["metric"] == "log_loss" and json.loads(out)["value"] == min(
        t.value for t in study.trials if t.value is not None
    )
    code, _, err = cli("run", "--study", "c", "--metric", "roc_auc", *QUICK)
    assert code == 1 and "was made with --metric log_loss, but this run asks for --metric roc_auc" in err


def test_the_yardstick_stands_beside_the_pick_everywhere(cli, workdir):
    pytest.importorskip("sklearn.datasets").load_wine(as_frame=True).frame.to_csv(workdir / "w.csv", index=False)
    code, out, err = cli(
        "run",
        "--study",
        "w",
        "--data",
        "w.csv",
        "--target",
        "target",
        "--n-trials",
        "3",
        "--max-epochs",
        "5",
        "--confirm",
        "1,3",
    )
    assert code == 0, err
    stick = optuna.load_study(study_name="w", storage=DB).user_attrs["search:confirmation"]["yardstick"]
    assert stick["name"] == "HistGradientBoosting" and stick["n"] == 3 and 0.5 < stick["mean"] <= 1.0
    assert "yardstick: HistGradientBoosting (scikit-learn's defaults)" in out
    assert "yardstick: HistGradientBoosting" in cli("best", "--study", "w")[1]
    (row,) = json.loads(cli("studies", "--json")[1])["studies"]
    assert row["yardstick"] == stick["mean"]
    assert cli("report", "--study", "w", "--output", "r.html")[0] == 0
    assert "yardstick: HistGradientBoosting" in (workdir / "r.html").read_text()
    code, out, err = cli(
        "run",
        "--study",
        "w2",
        "--data",
        "w.csv",
        "--target",
        "target",
        "--n-trials",
        "2",
        "--max-epochs",
        "2",
        "--confirm",
        "1,2",
        "--baseline",
        "none",
    )
    assert code == 0 and "yardstick" not in out


def test_the_yardstick_scores_the_same_rows_as_the_pick():
    """Fitted on each fresh resample's training rows, scored on its validation rows: by hand, the same figure."""
    import tempfile
    from pathlib import Path

    from sklearn.datasets import load_iris
    from sklearn.ensemble import HistGradientBoostingClassifier

    from objectives import DataConfig, metric_named
    from objectives.data import Resample, pool_indices
    from objectives.data._load import table_parts
    from search.confirmation._plan import Plan, resample_keys
    from search.confirmation._yardstick import yardstick

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "iris.csv"
        load_iris(as_frame=True).frame.to_csv(path, index=False)
        data = DataConfig(data_file=str(path), target="target")
        keys = tuple(resample_keys(0, "kfold", "estimate", 2))
        plan = Plan("auto", (0,), (), keys, "kfold", 0.0, 0.25, 0, None)
        stick = yardstick(data, metric_named("accuracy"), plan, {k: 1.0 for k in keys})
        pool, _ = table_parts(data)
        train, val = pool_indices(pool.labels, 0.1, 0, True, Resample.from_key(keys[0]))
        model = HistGradientBoostingClassifier(random_state=0).fit(pool.numeric[train], pool.labels[train])
        assert stick.values[keys[0]] == pytest.approx((model.predict(pool.numeric[val]) == pool.labels[val]).mean())
        assert stick.lead == pytest.approx(1.0 - stick.mean)


def test_a_regression_target_is_standardised_with_the_training_rows(workdir):
    from objectives import DataConfig, load_splits
    from objectives.data import SEARCH, pool_indices
    from objectives.data._load import table_parts

    pytest.importorskip("sklearn.datasets").load_diabetes(as_frame=True).frame.to_csv(workdir / "d.csv", index=False)
    config = DataConfig(data_file="d.csv", target="target", task="regression")
    splits = load_splits(config)
    pool, _ = table_parts(config)
    train, _ = pool_indices(pool.labels, 0.1, 0, False, SEARCH)
    assert splits.target_mean == pytest.approx(pool.labels[train].mean()) and splits.target_std == pytest.approx(
        pool.labels[train].std()
    )
    assert float(splits.train_y.mean()) == pytest.approx(0.0, abs=1e-5) and float(
        splits.train_y.std()
    ) == pytest.approx(1.0, abs=1e-2)
    assert splits.num_outputs == 1 and splits.classes == ()
