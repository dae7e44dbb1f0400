"""`search run` called in-process against real SQLite files."""

import sqlite3

import optuna
import pytest

from search import STUDY_ATTR

FAST = ["--limit-train", "400", "--max-epochs", "3", "--seed", "1"]


def run_args(root, study="s", n=4, *extra):
    return ["run", "--study", study, "--data-dir", root, "--n-trials", n, *FAST, *extra]


def load(study="s", storage="sqlite:///studies/studies.db"):
    return optuna.load_study(study_name=study, storage=storage)


def dump(path="studies/studies.db") -> list[str]:
    with sqlite3.connect(path) as con:
        return list(con.iterdump())


def test_run_stores_trials_prints_lines_and_summary(cli, fashion_root, workdir):
    code, out, err = cli(*run_args(fashion_root, "s", 5))
    assert code == 0, err
    assert (workdir / "studies" / "studies.db").exists()
    study = load()
    assert len(study.trials) == 5
    assert sum(line.startswith("[") for line in out.splitlines()) == 5
    assert "best by search value: trial" in out and "this run:  5 trials" in out
    assert "continue it with: search run --study s" in out
    made = study.user_attrs[STUDY_ATTR]
    assert made["dataset"] == "fashion-mnist" and made["seed"] == 1 and made["limit_train"] == 400
    assert made["space"]["epochs"] == {"low": 1, "high": 3, "log": False, "step": 1}


def test_same_command_continues_the_study(cli, fashion_root):
    assert cli(*run_args(fashion_root, "s", 3))[0] == 0
    code, out, _ = cli(*run_args(fashion_root, "s", 2))
    assert code == 0
    study = load()
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert "the study: 5 trials" in out
    # The continued run samples anew: it does not replay the first run's points.
    first, later = study.trials[:3], study.trials[3:]
    assert all(t.params != f.params for t in later for f in first)


def test_pruning_happens_in_a_study(cli, fashion_root):
    space = fashion_root / "space.yaml"
    space.write_text("hidden_units: 32\nepochs: 4\nbatch_size: 64\n")
    code, out, err = cli(
        "run",
        "--study",
        "p",
        "--data-dir",
        fashion_root,
        "--n-trials",
        14,
        "--space",
        space,
        "--sampler",
        "random",
        "--limit-train",
        400,
    )
    assert code == 0, err
    states = [t.state for t in load("p").trials]
    assert optuna.trial.TrialState.PRUNED in states and optuna.trial.TrialState.COMPLETE in states
    assert "PRUNED" in out


def test_synthetic_demo_runs_offline(cli):
    code, out, err = cli(
        "run", "--study", "demo", "--dataset", "synthetic", "--n-trials", 2, "--max-epochs", 1, "--limit-train", 500
    )
    assert code == 0, err
    assert load("demo").user_attrs[STUDY_ATTR]["dataset"] == "synthetic"


@pytest.mark.parametrize(
    "sampler, cls",
    [
        ("random", "RandomSampler"),
        ("cmaes", "CmaEsSampler"),
        ("gp", "GPSampler"),
        ("qmc", "QMCSampler"),
        ("tpe", "TPESampler"),
    ],
)
def test_the_named_sampler_is_the_one_used(cli, fashion_root, sampler, cls):
    code, _, err = cli(*run_args(fashion_root, sampler, 2, "--sampler", sampler))
    assert code == 0, err
    runs = [t.user_attrs["run"] for t in load(sampler).trials]
    assert {(r["sampler"], r["sampler_class"]) for r in runs} == {(sampler, cls)}


@pytest.mark.parametrize(
    "pruner, cls",
    [
        ("percentile", "PercentilePruner"),
        ("sha", "SuccessiveHalvingPruner"),
        ("hyperband", "HyperbandPruner"),
        ("none", "NopPruner"),
    ],
)
def test_the_named_pruner_is_the_one_used_and_prunes(cli, fashion_root, pruner, cls):
    space = fashion_root / "prune-space.yaml"
    space.write_text("hidden_units: 16\nepochs: 4\nbatch_size: 64\n")
    code, _, err = cli(
        "run",
        "--study",
        pruner,
        "--data-dir",
        fashion_root,
        "--n-trials",
        14,
        "--space",
        space,
        "--sampler",
        "random",
        "--limit-train",
        200,
        "--pruner",
        pruner,
    )
    assert code == 0, err
    trials = load(pruner).trials
    assert {t.user_attrs["run"]["pruner_class"] for t in trials} == {cls}
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert (pruned == []) == (pruner == "none")


def test_version(cli):
    from importlib.metadata import version

    code, out, _ = cli("--version")
    assert code == 0 and out.strip() == f"search {version('search')}"


def test_space_prints_a_file_run_takes_back(cli, fashion_root, workdir):
    import yaml

    from objectives import SearchSpace

    code, out, _ = cli("space", "--max-epochs", "3")
    assert code == 0 and out.startswith("# ")
    (workdir / "space.yaml").write_text(out)
    assert SearchSpace.from_file("space.yaml") == SearchSpace.from_mapping({}, max_epochs=3)
    assert yaml.safe_load(out)["epochs"] == {"low": 1, "high": 3, "log": False, "step": 1}
    code, _, err = cli(
        "run",
        "--study",
        "sp",
        "--data-dir",
        fashion_root,
        "--space",
        "space.yaml",
        "--n-trials",
        1,
        "--limit-train",
        200,
    )
    assert code == 0, err
    code, again, _ = cli("space", "--study", "sp")
    assert code == 0 and again == out  # the study's own space, as it was made
    code, _, err = cli("space", "--study", "nope")
    assert code == 1 and "no study 'nope'" in err


def test_continuing_with_another_dataset_or_space_is_refused(cli, fashion_root):
    assert cli(*run_args(fashion_root, "s", 2))[0] == 0
    before = dump()
    code, out, err = cli("run", "--study", "s", "--dataset", "synthetic", "--n-trials", 1, *FAST)
    assert code == 1 and "made with --dataset fashion-mnist, but this run asks for --dataset synthetic" in err
    code, _, err = cli(
        "run",
        "--study",
        "s",
        "--data-dir",
        fashion_root,
        "--n-trials",
        1,
        "--limit-train",
        "400",
        "--max-epochs",
        "5",
        "--seed",
        "1",
    )
    assert code == 1 and "another search space (epochs: the study has 1..3, this run 1..5)" in err
    code, _, err = cli("run", "--study", "s", "--data-dir", fashion_root, "--n-trials", 1, "--seed", "7")
    assert code == 1 and "made with --seed 1, but this run asks for --seed 7" in err
    assert dump() == before


def test_a_continued_study_keeps_what_it_was_made_with(cli, workdir):
    """`search run --study demo` on a synthetic study continues it; it does not look for FashionMNIST."""
    made = (
        "run",
        "--study",
        "demo",
        "--dataset",
        "synthetic",
        "--n-trials",
        1,
        "--max-epochs",
        2,
        "--limit-train",
        300,
        "--seed",
        4,
    )
    assert cli(*made)[0] == 0
    code, out, err = cli("run", "--study", "demo", "--n-trials", 1, "--data-dir", workdir / "no-data-here")
    assert code == 0, err
    assert "the study: 2 trials" in out
    study = load("demo")
    assert study.user_attrs[STUDY_ATTR]["dataset"] == "synthetic"
    assert all(t.params.get("epochs", 1) <= 2 for t in study.trials)
    assert study.trials[1].user_attrs["seed"] == 4 + 1  # the study's seed, not the default 0
    assert not (workdir / "no-data-here").exists()


BAD_INPUT = [
    (["--n-trials", "x"], 2, "argument --n-trials: invalid int value: 'x'"),
    (["--n-trials", "0"], 1, "--n-trials is 0, but must be >= 1"),
    (["--n-trials", "-3"], 1, "--n-trials is -3, but must be >= 1"),
    (["--sampler", "grid"], 2, "argument --sampler: invalid choice: 'grid'"),
    (["--timeout", "-5"], 1, "--timeout is -5, but must be > 0"),
    (["--validation-fraction", "2", "--study", "fresh"], 1, "--validation-fraction is 2.0, but must be > 0 and < 1"),
    (["--limit-train", "0", "--study", "fresh"], 1, "--limit-train is 0, but must be >= 1"),
    (["--max-epochs", "0"], 1, "--max-epochs is 0, but must be >= 1"),
    (["--jobs", "0"], 1, "--jobs is 0, but must be >= 1"),
    (["--space", "missing.yaml"], 1, "cannot read space file missing.yaml"),
    (["--storage", "nonsense"], 1, "is not a storage URL"),
    (
        ["--storage", "postgresql://root:pw123@127.0.0.1:1/test"],
        1,
        "cannot open storage postgresql://root:***@127.0.0.1:1/test",
    ),
    (["--device", "quantum"], 2, "invalid choice: 'quantum'"),
]


@pytest.mark.parametrize("extra, code, message", BAD_INPUT)
def test_bad_input_is_one_line_and_changes_nothing(cli, fashion_root, extra, code, message):
    assert cli(*run_args(fashion_root, "s", 1))[0] == 0
    before = dump()
    got, out, err = cli("run", "--study", "s", "--data-dir", fashion_root, *extra)
    assert got == code
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "pw123" not in err + out
    assert dump() == before


def test_missing_data_is_one_line_and_creates_no_study(cli, workdir):
    code, _, err = cli("run", "--study", "x", "--data-dir", workdir / "nodata", "--n-trials", 1)
    assert code == 1 and "put train-images-idx3-ubyte.gz" in err and len(err.strip().splitlines()) == 1
    assert not (workdir / "studies").exists()
    assert not (workdir / "nodata").exists()


@pytest.mark.parametrize("content", [[], ["notes.txt"]])
def test_a_failed_data_load_leaves_the_folder_as_it_was(cli, workdir, content):
    """An empty --data-dir, or one with other files, gets no FashionMNIST/raw/ from a refused run."""
    folder = workdir / "mine"
    folder.mkdir()
    for name in content:
        (folder / name).write_text("mine")
    code, _, err = cli("run", "--study", "x", "--data-dir", folder, "--n-trials", 1)
    assert code == 1 and "could not be downloaded" in err
    assert sorted(p.name for p in folder.iterdir()) == content


def test_bad_space_file_is_refused(cli, fashion_root, workdir):
    (workdir / "space.yaml").write_text("lr: {low: 0.1, high: 0.01}\n")
    code, _, err = cli("run", "--study", "x", "--data-dir", fashion_root, "--space", "space.yaml")
    assert code == 1 and "space file space.yaml: lr: low 0.1 is greater than high 0.01" in err


def test_help_has_examples(cli):
    for args in (["--help"], ["run", "--help"]):
        code, out, _ = cli(*args)
        assert code == 0 and "example" in out and "search run --study" in out
    assert "default: tpe" in cli("run", "--help")[1]


def test_module_entry_point(fashion_root, workdir):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "search", "run", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--n-trials" in result.stdout


def test_one_error_root_and_each_side_names_options_its_own_way(cli):
    """Every error of the tool's is a SearchError; the core names an option by its Python name, the command
    line by its flag, `tune` by its parameter."""
    import search
    from objectives import DataError, ModelError, ObjectiveError, SpaceError
    from search.study._config import RunConfig

    assert all(issubclass(kind, search.SearchError) for kind in (ObjectiveError, DataError, SpaceError, ModelError))
    with pytest.raises(search.SearchError, match=r"^`n_trials` is 0, but must be >= 1$"):
        RunConfig(n_trials=0)
    code, _, err = cli("run", "--study", "s", "--dataset", "synthetic", "--n-trials", 0)
    assert (code, err.strip()) == (1, "search: error: --n-trials is 0, but must be >= 1")
    from search.cli._cli import build_parser, flagged

    said = flagged("`yardstick` is 'x'; `data_file` and `dataset` differ; `unknown` stays", build_parser())
    assert said == "--baseline is 'x'; --data and --dataset differ; `unknown` stays"
    with pytest.raises(search.SearchError, match=r"^`baseline` is 'nope', but must be one of") as raised:
        search.tune(dataset="synthetic", baseline="nope")
    assert "yardstick" not in str(raised.value) and "--" not in str(raised.value)
    with pytest.raises(search.SearchError, match=r"^`data` nowhere\.csv: no such file$"):
        search.tune("nowhere.csv", target="y")  # objectives' `data_file`, as tune calls it
    code, _, err = cli("run", "--study", "s", "--data", "nowhere.csv", "--target", "y")
    assert (code, err.strip()) == (1, "search: error: --data nowhere.csv: no such file")


def test_each_option_of_the_parsers_is_declared_once():
    """Options both training commands take come from one parent parser, not from two copies that drift."""
    import ast
    from pathlib import Path

    cli = Path(__file__).resolve().parents[1] / "search" / "cli"
    source = "\n".join((cli / name).read_text() for name in ("_run_command.py", "_confirm_command.py"))
    flags = [
        node.args[0].value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", None) == "add_argument"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ]
    assert {"--storage", "--jobs", "--n-trials"} <= set(flags)
    assert sorted({f for f in flags if flags.count(f) > 1} - {"--study", "--verbose"}) == []
