"""studies, trials, best, export, train, report, delete: called in-process on a real SQLite study."""

import json
import re
import shutil

import optuna
import pandas as pd
import pytest
import torch

from objectives import DataConfig, Normalizer, evaluate, load_model, load_train_test

DB = "studies/studies.db"


@pytest.fixture(scope="module")
def stored(tmp_path_factory, fashion_root):
    """A study of 6 trials made once per module; tests get a copy of its database."""
    from search import main

    where = tmp_path_factory.mktemp("stored")
    url = f"sqlite:///{where}/studies.db"
    code = main(
        [
            "run",
            "--study",
            "s",
            "--storage",
            url,
            "--data-dir",
            str(fashion_root),
            "--n-trials",
            "6",
            "--max-epochs",
            "3",
            "--limit-train",
            "400",
            "--seed",
            "2",
            "--confirm",
            "0",
        ]
    )
    assert code == 0
    return where / "studies.db"


@pytest.fixture
def study_db(stored, workdir):
    (workdir / "studies").mkdir()
    shutil.copy(stored, workdir / DB)
    return workdir / DB


def test_studies_lists_counts_and_dataset(cli, study_db):
    code, out, _ = cli("studies", "--json")
    assert code == 0
    (row,) = json.loads(out)["studies"]
    assert row["study"] == "s" and row["trials"] == 6 and row["dataset"] == "fashion-mnist"
    assert row["complete"] + row["pruned"] + row["fail"] == 6 and 0 < row["best_value"] <= 1
    assert row["created"] <= row["updated"]
    code, out, _ = cli("studies")
    header, line = out.splitlines()
    assert code == 0 and header.split()[:2] == ["study", "trials"] and "complete" in header and "best_value" in header
    assert line.split()[:2] == ["s", "6"]
    assert str(float(f"{row['best_value']:.4g}")) in line.split()  # rounded for people


def test_studies_on_missing_storage_creates_nothing(cli, workdir):
    code, _, err = cli("studies")
    assert code == 1 and "does not exist" in err
    assert not (workdir / "studies").exists()


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_trials_to_file(cli, study_db, workdir, fmt):
    code, out, _ = cli("trials", "--study", "s", "--format", fmt, "--output", f"t.{fmt}")
    assert code == 0 and "wrote 6 trials" in out
    df = pd.read_csv(workdir / "t.csv") if fmt == "csv" else pd.read_json(workdir / "t.json")
    assert list(df["number"]) == list(range(6))
    for column in (
        "state",
        "value",
        "seconds",
        "epochs_run",
        "lr",
        "optimizer",
        "samples_per_second",
        "val_loss",
        "config",
        "run",
    ):
        assert column in df.columns, column
    assert not [c for c in df.columns if c.startswith(("params_", "user_attrs_"))]


def test_trials_json_nests_objects(cli, study_db, workdir):
    code, out, _ = cli("trials", "--study", "s", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 6
    assert isinstance(rows[0]["config"], dict) and rows[0]["config"]["lr"] == rows[0]["lr"]
    assert rows[0]["run"]["sampler"] == "tpe" and rows[0]["run"]["pruner"] == "median"


def test_trials_table_fits_a_terminal(cli, study_db):
    code, out, _ = cli("trials", "--study", "s")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:5] == ["number", "state", "value", "seconds", "epochs_run"]
    assert len(lines) == 7 and max(map(len, lines)) <= 100
    assert "user_attrs" not in out and "config" not in lines[0]
    shown = [float(line.split()[lines[0].split().index("lr")]) for line in lines[1:]]
    stored = [t.params["lr"] for t in optuna.load_study(study_name="s", storage=f"sqlite:///{DB}").trials]
    assert shown == [float(f"{v:.4g}") for v in stored] and shown != stored  # 4 significant digits


def test_trials_columns_choose(cli, study_db):
    code, out, _ = cli("trials", "--study", "s", "--columns", "number,val_loss,lr")
    assert code == 0 and out.splitlines()[0].split() == ["number", "val_loss", "lr"]
    code, _, err = cli("trials", "--study", "s", "--columns", "number,nope")
    assert code == 1 and "--columns: no column 'nope'" in err and len(err.strip().splitlines()) == 1


def test_best_json_matches_storage(cli, study_db):
    code, out, _ = cli("best", "--study", "s", "--json")
    best = json.loads(out)
    trial = optuna.load_study(study_name="s", storage=f"sqlite:///{DB}").best_trial
    assert (best["number"], best["value"], best["params"]) == (trial.number, trial.value, trial.params)
    assert best["user_attrs"] == trial.user_attrs  # full precision in JSON
    from search.study._pick import edge_warnings, stored_space

    study = optuna.load_study(study_name="s", storage=f"sqlite:///{DB}")
    assert best["warnings"] == edge_warnings(trial, stored_space(study))


def test_best_rounds_for_people(cli, study_db):
    code, out, _ = cli("best", "--study", "s")
    trial = optuna.load_study(study_name="s", storage=f"sqlite:///{DB}").best_trial
    val_loss = trial.user_attrs["val_loss"]
    assert code == 0 and f"val_loss: {float(f'{val_loss:.4g}')}" in out
    assert str(trial.user_attrs["val_loss"]) not in out


def _add_best(study, params, distributions):
    study.add_trial(
        optuna.trial.create_trial(
            params=params,
            distributions=distributions,
            value=0.999,
            user_attrs={"config": {**params, "hidden": [32, 32], "activation": "relu"}},
        )
    )


def test_best_warns_at_the_edge_of_a_range(cli, workdir, fashion_root):
    (workdir / "space.yaml").write_text(
        "lr: {low: 0.01, high: 0.1, log: true}\noptimizer: momentum\nhidden_units: 32\n"
    )
    base = [
        "run",
        "--study",
        "edge",
        "--dataset",
        "synthetic",
        "--space",
        "space.yaml",
        "--max-epochs",
        "5",
        "--limit-train",
        "300",
        "--pruner",
        "none",
    ]
    assert cli(*base, "--n-trials", "1")[0] == 0
    study = optuna.load_study(study_name="edge", storage=f"sqlite:///{DB}")
    dists = study.trials[0].distributions
    _add_best(study, {"lr": 0.1, "momentum": 0.75, "epochs": 5, "batch_size": 128}, dists)
    code, out, err = cli("best", "--study", "edge")
    assert code == 0 and "trial 1, picked by its search value: validation accuracy 0.9990" in out
    assert (
        "lr=0.1 is at the upper edge of its range [0.01, 0.1]; widen it with lr: {low: ..., high: ...} in a --space file"
        in err
    )
    assert "epochs=5 is at the upper edge of its range [1, 5]; widen it with --max-epochs" in err
    assert "batch_size" not in err and "momentum" not in err  # 128 and 0.75 sit inside their ranges
    code, out, _ = cli("best", "--study", "edge", "--json")
    assert len(json.loads(out)["warnings"]) == 2


def test_an_unreadable_stored_space_is_said(cli, workdir, fashion_root):
    assert (
        cli(
            "run",
            "--study",
            "odd",
            "--data-dir",
            fashion_root,
            "--n-trials",
            "1",
            "--max-epochs",
            "1",
            "--limit-train",
            "200",
        )[0]
        == 0
    )
    study = optuna.load_study(study_name="odd", storage=f"sqlite:///{DB}")
    made = study.user_attrs["search"]
    study.set_user_attr("search", {**made, "space": {**made["space"], "warmup": 0.5}})
    code, _, err = cli("best", "--study", "odd")
    assert code == 1 and "recorded search space this version cannot read: unknown parameter 'warmup'" in err


def test_edge_rules():
    from objectives import SearchSpace
    from search.study._pick import edge_warnings

    space = SearchSpace.from_mapping({"lr": {"low": 1e-5, "high": 1e-1, "log": True}})
    trial = optuna.trial.create_trial(
        params={"lr": 1e-3, "batch_size": 128},
        distributions={
            "lr": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True),
            "batch_size": optuna.distributions.CategoricalDistribution([32, 64, 128, 256, 512]),
        },
        value=0.5,
    )
    assert edge_warnings(trial, space) == []
    low = optuna.trial.create_trial(
        params={"lr": 1.2e-5, "batch_size": 512}, distributions=trial.distributions, value=0.5
    )
    warnings = edge_warnings(low, space)
    assert any("lr=1.2e-05 is at the lower edge" in w for w in warnings)
    assert any("batch_size=512 is the largest" in w for w in warnings)


def test_export_then_train_round_trips(cli, study_db, workdir, fashion_root):
    code, out, _ = cli("export", "--study", "s", "--output", "best.yaml")
    assert code == 0
    import yaml

    exported = yaml.safe_load((workdir / "best.yaml").read_text())
    best = optuna.load_study(study_name="s", storage=f"sqlite:///{DB}").best_trial
    assert exported["source"] == {
        "study": "s",
        "trial": best.number,
        "value": best.value,
        "metric": "accuracy",
        "picked_by": "search value",
        "storage": f"sqlite:///{DB}",
    }
    assert {k: exported["params"][k] for k in best.params} == best.params
    assert exported["data"] == {
        "dataset": "fashion-mnist",
        "validation_fraction": 0.1,
        "seed": 2,
        "task": "classification",
        "metric": "accuracy",
    }

    code, out, err = cli(
        "train", "--config", "best.yaml", "--data-dir", fashion_root, "--save-model", "m/best.pt", "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    epochs = exported["params"]["epochs"]
    assert [line.split()[1] for line in err.splitlines()] == [f"{k}/{epochs}" for k in range(1, epochs + 1)]  # progress
    # The test rows are scored once, after the last epoch: never watched while training.
    assert ["test_acc" in line for line in err.splitlines()] == [k == epochs for k in range(1, epochs + 1)], err
    assert (workdir / "m" / "best.json").exists() and result["metrics_path"] == "m/best.json"
    assert result["train_samples"] == 1000 and result["test_samples"] == 200
    assert 0 <= result["test_loss"] and 0.1 < result["test_accuracy"] <= 1

    # The saved model loads back (weights_only) and scores the same on the test split.
    model, record = load_model(workdir / "m" / "best.pt")
    assert record["test_accuracy"] == result["test_accuracy"]
    splits = load_train_test(DataConfig(data_dir=str(fashion_root)))
    _, accuracy = evaluate(model, splits.test_x, splits.test_y, Normalizer(splits.mean, splits.std))
    assert accuracy == pytest.approx(result["test_accuracy"])

    # Training again into the same file says so; a folder is refused in one line.
    code, out, err = cli(
        "train",
        "--config",
        "best.yaml",
        "--data-dir",
        fashion_root,
        "--save-model",
        "m/best.pt",
        "--limit-train",
        "100",
    )
    assert code == 0 and "note: replaced the model that was at m/best.pt" in err
    code, out, err = cli("train", "--config", "best.yaml", "--data-dir", fashion_root, "--save-model", "m")
    assert code != 0 and "--save-model m is a folder" in err and len(err.strip().splitlines()) == 1
    threads = torch.get_num_threads()
    code, out, err = cli("train", "--config", "best.yaml", "--data-dir", fashion_root, "--threads", 0)
    assert (code, err.strip()) == (1, "search: error: --threads is 0, but must be >= 1")
    code, out, err = cli(
        "train", "--config", "best.yaml", "--data-dir", fashion_root, "--limit-train", 100, "--threads", 1
    )
    assert code == 0 and torch.get_num_threads() == threads  # the caller's own setting again


def test_hand_written_params_only_config_trains(cli, workdir, fashion_root):
    (workdir / "mine.json").write_text(
        json.dumps({"params": {"optimizer": "adam", "lr": 0.001, "batch_size": 64, "epochs": 2}})
    )
    code, out, err = cli("train", "--config", "mine.json", "--data-dir", fashion_root)
    assert code == 0, err
    assert (
        "test accuracy" in out
        and (workdir / "models" / "mine.pt").exists()
        and (workdir / "models" / "mine.json").exists()
    )
    state = torch.load(workdir / "models" / "mine.pt", weights_only=True)
    assert state["0.weight"].shape == (512, 784)


@pytest.mark.parametrize(
    "content, message",
    [
        ("params: {lr: -1}\n", "lr is -1, but must be > 0"),
        ("params: {lr: abc}\n", "c.yaml: lr is 'abc', but must be a number"),
        ("params: {batch_size: 6.5}\n", "c.yaml: batch_size is 6.5, but must be an integer"),
        ("params: {optimizer: [adam]}\n", "c.yaml: optimizer is ['adam'], but must be a str"),
        ("params: {lr: 0.1}\nmodel: {hidden: abc}\n", "c.yaml: hidden is 'abc', but must be a list of integers"),
        ("params: {learning_rate: 0.1}\n", "unknown parameter 'learning_rate'"),
        ("nothing: here\n", "must hold a 'params' mapping"),
        ("params: {lr: [\n", "is not valid YAML or JSON"),
        ("params: {}\nextra: 1\n", "unknown section 'extra'"),
    ],
)
def test_malformed_config_files(cli, workdir, content, message):
    (workdir / "c.yaml").write_text(content)
    code, _, err = cli("train", "--config", "c.yaml")
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1


def test_export_refuses_bad_suffix_and_unknown_study(cli, study_db):
    assert "must end in .yaml" in cli("export", "--study", "s", "--output", "best.txt")[2]
    assert "no study 'nope'" in cli("export", "--study", "nope", "--output", "b.yaml")[2]


def test_report_has_its_plots(cli, study_db, workdir):
    code, out, _ = cli("report", "--study", "s", "--output", "r.html")
    assert code == 0
    page = (workdir / "r.html").read_text()
    for title in (
        "Optimization history",
        "Learning curves",
        "Parameter importances",
        "Parallel coordinates",
        "Slices",
        "Trials",
    ):
        assert f"<h2>{title}</h2>" in page
    assert page.count('class="plotly-graph-div"') == 5
    assert "Plotly.newPlot" in page and not re.search(r"<script[^>]*src=", page)  # plotly.js inline: works offline
    assert "<th>data set</th><td>fashion-mnist</td>" in page and "<th>sampler</th><td>tpe</td>" in page
    assert f"<th>storage</th><td>sqlite:///{DB}</td>" in page and "<th>first trial started</th>" in page
    assert page.count("<tr><td>") == 6  # the trials table
    assert '"showlegend":true' in page and '"name":"complete"' in page


def test_delete_asks_first(cli, study_db, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    code, out, err = cli("delete", "--study", "s")
    assert code == 0 and "kept study 's'; nothing was deleted" in out and err == ""  # saying no is no error
    assert optuna.get_all_study_names(f"sqlite:///{DB}") == ["s"]
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    assert cli("delete", "--study", "s")[0] == 0
    assert optuna.get_all_study_names(f"sqlite:///{DB}") == []


def test_delete_yes(cli, study_db):
    code, out, _ = cli("delete", "--study", "s", "--yes")
    assert code == 0 and "deleted study 's' (6 trials)" in out


@pytest.mark.parametrize(
    "command", ["studies", "trials", "best", "export", "train", "space", "dashboard", "report", "delete"]
)
def test_every_help_has_an_example(cli, command):
    code, out, _ = cli(command, "--help")
    assert code == 0 and "example" in out and f"search {command}" in out


@pytest.mark.parametrize("port", ["99999", "-1", "x"])
def test_dashboard_refuses_a_bad_port(cli, port):
    code, _, err = cli("dashboard", "--port", port)
    assert code == 2 and "argument --port" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "command",
    [
        ["studies"],
        ["trials", "--study", "s"],
        ["best", "--study", "s"],
        ["export", "--study", "s", "--output", "b.yaml"],
        ["space"],
        ["delete", "--study", "s", "--yes"],
    ],
)
def test_read_only_commands_import_no_heavy_modules(study_db, workdir, command):
    """They start fast because they never import torch, torchvision, pandas or plotly (bench/startup.py times them)."""
    import subprocess
    import sys

    probe = (
        "import sys; from search.cli._cli import main; code = main(sys.argv[1:]); "
        "print('HEAVY', sorted(m for m in ('torch', 'torchvision', 'pandas', 'plotly') if m in sys.modules)); sys.exit(code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *command], cwd=workdir, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "HEAVY []"


def test_readme_and_gitignore_say_where_train_writes():
    """`search train` writes models/NAME.pt and NAME.json: the README says so, and git ignores models/."""
    from pathlib import Path

    root = Path(__file__).parents[1]
    readme = " ".join(root.joinpath("README.md").read_text().split())
    assert "`--save-model models/cancer.pt` writes `models/cancer.pt` (the weights) and `models/cancer.json`" in readme
    assert "PATH.json" not in readme
    assert "/models/" in root.joinpath(".gitignore").read_text().split()
