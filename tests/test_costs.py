"""Multi-objective studies (search/study/_costs.py, objectives/_costs.py): the metric beside a model's
costs, the Pareto front in `search best`, and `--pick` choosing (and confirmation confirming) under a
constraint."""

from __future__ import annotations

import json
import re

import optuna
import pytest
from _procs import open_study, search
from optuna.trial import TrialState

from search._errors import SearchError
from search.study._costs import Constraint, parse_objective

DB = "sqlite:///studies/studies.db"
QUICK = ["--dataset", "synthetic", "--max-epochs", "1"]
# Sizes that differ by ~16x, so params and the metric pull apart.
SPACE = "hidden_units: {choices: [8, 128]}\nhidden_layers: 1\nlr: {low: 0.001, high: 0.05, log: true}\n"


@pytest.fixture
def sized(workdir):
    (workdir / "space.yaml").write_text(SPACE)
    return ["--space", "space.yaml"]


def test_a_two_objective_study_keeps_the_metric_and_the_parameter_count(cli, sized):
    code, out, err = cli(
        "run", "--study", "mo", "--objective", "accuracy,params", "--n-trials", 6, "--confirm", 0, *QUICK, *sized
    )
    assert code == 0, err
    study = optuna.load_study(study_name="mo", storage=DB)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["validation accuracy", "parameters"]
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 6
    assert all(t.values[1] == t.user_attrs["n_params"] == t.user_attrs["costs"]["params"] for t in complete)
    assert all(not t.intermediate_values for t in complete)  # Optuna takes no epoch reports from one
    assert all(t.user_attrs["run"]["pruner"] == "none" for t in complete)


def test_best_json_lists_the_pareto_front_and_pick_chooses_under_the_constraint(cli, sized):
    assert (
        cli("run", "--study", "mo", "--objective", "accuracy,params", "--n-trials", 8, "--confirm", 0, *QUICK, *sized)[
            0
        ]
        == 0
    )
    study = optuna.load_study(study_name="mo", storage=DB)
    code, out, err = cli("best", "--study", "mo", "--json")
    assert code == 0, err
    best = json.loads(out)
    assert best["objectives"] == ["accuracy", "params"]
    assert sorted(r["number"] for r in best["pareto_front"]) == sorted(t.number for t in study.best_trials)
    assert all(set(r["values"]) == {"accuracy", "params"} for r in best["pareto_front"])
    shown = [r["values"]["accuracy"] for r in best["pareto_front"]]
    assert shown == sorted(shown, reverse=True)  # the best metric first
    small = min(t.values[1] for t in study.trials if t.values)
    code, out, err = cli("best", "--study", "mo", "--json", "--pick", f"params<={small:g}")
    assert code == 0, err
    picked = json.loads(out)
    under = [t for t in study.trials if t.values and t.values[1] <= small]
    assert picked["number"] == max(under, key=lambda t: (t.values[0], -t.number)).number
    assert picked["constraint"] == f"params<={small:g}" and picked["user_attrs"]["n_params"] <= small
    code, out, err = cli("best", "--study", "mo", "--pick", f"params<={small:g}")
    assert code == 0 and f"picked by its search value among the trials with params<={small:g}" in out, err
    assert "Pareto front (" in out and "<- the pick" in out


def test_confirmation_confirms_the_point_chosen_under_the_constraint(cli, sized):
    code, out, err = cli(
        "run", "--study", "mo", "--objective", "accuracy,params", "--n-trials", 6, "--confirm", "3,2",
        "--pick", "params<=10000", *QUICK, *sized,
    )  # fmt: skip
    assert code == 0, err
    study = optuna.load_study(study_name="mo", storage=DB)
    small = {t.number for t in study.trials if t.values and t.user_attrs["n_params"] <= 10000}
    assert small, "the space must give some trials 8 hidden units"
    summary = study.user_attrs["search:confirmation"]
    assert summary["constraint"] == "params<=10000"
    assert {c["trial"] for c in summary["ranking"]} <= small  # only trials that meet it were raced
    assert "best by search value among the trials with params<=10000" in out
    code, out, err = cli("best", "--study", "mo", "--pick", "params<=10000")
    assert code == 0 and "picked by confirmation among the trials with params<=10000" in out, err
    code, out, err = cli("best", "--study", "mo", "--pick", "params<=1e9")  # another constraint: not that confirmation
    assert code == 0 and "picked by its search value among the trials with params<=1e+09" in out, err
    code, out, err = cli("export", "--study", "mo", "--pick", "params<=10000", "--output", "small.yaml")
    assert code == 0, err
    import yaml

    source = yaml.safe_load(open("small.yaml"))["source"]
    assert source["constraint"] == "params<=10000" and source["picked_by"] == "confirmation"
    assert source["trial"] == summary["leader"] in small


def test_latency_is_measured_per_row(cli, sized):
    assert (
        cli("run", "--study", "lat", "--objective", "latency", "--n-trials", 2, "--confirm", 0, *QUICK, *sized)[0] == 0
    )
    study = optuna.load_study(study_name="lat", storage=DB)
    assert study.metric_names == ["validation accuracy", "latency (µs a row)"]
    assert all(0 < t.values[1] < 1e5 and t.values[1] == t.user_attrs["costs"]["latency"] for t in study.trials)
    code, out, err = cli("trials", "--study", "lat")
    assert code == 0 and "latency" in out.splitlines()[0], err


def test_the_costs_are_part_of_the_study(cli, sized):
    assert (
        cli("run", "--study", "mo", "--objective", "accuracy,params", "--n-trials", 1, "--confirm", 0, *QUICK, *sized)[
            0
        ]
        == 0
    )
    code, out, err = cli("run", "--study", "mo", "--n-trials", 1, "--dataset", "synthetic")  # continued as made
    assert code == 0, err
    assert len(optuna.load_study(study_name="mo", storage=DB).directions) == 2
    code, _, err = cli(
        "run", "--study", "mo", "--objective", "accuracy,latency", "--n-trials", 1, "--dataset", "synthetic"
    )
    assert code == 1 and "was made with costs params, but this run asks for latency; leave --objective out" in err
    assert len(optuna.load_study(study_name="mo", storage=DB).trials) == 2  # a refused run changes nothing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--objective", "acc,params"], "--objective is 'acc,params', but 'acc' is neither a metric"),
        (["--objective", "accuracy,r2"], "--objective is 'accuracy,r2', but names 2 metrics"),
        (
            ["--objective", "accuracy,params", "--metric", "log_loss"],
            "--objective names accuracy, but --metric log_loss",
        ),
        (["--objective", "params", "--pruner", "median"], "--pruner median cannot prune a multi-objective study"),
        (["--objective", "params", "--sampler", "cmaes"], "--sampler cmaes cannot search a multi-objective study"),
        (["--pick", "size<=3"], "--pick is 'size<=3', but 'size' is no cost"),
        (["--pick", "params=3"], "--pick is 'params=3', but must be COST<=N"),
    ],
)
def test_bad_objectives_get_one_line_and_make_nothing(cli, workdir, args, message):
    code, out, err = cli("run", "--study", "x", "--n-trials", 1, *QUICK, *args)
    assert code == 1 and err.startswith("search: error: ") and len(err.strip().splitlines()) == 1, err
    assert message in err
    assert not (workdir / "studies" / "studies.db").exists() or "x" not in optuna.get_all_study_names(DB)


def test_no_trial_meeting_the_constraint_says_so(cli, sized):
    code, out, err = cli(
        "run",
        "--study",
        "mo",
        "--objective",
        "params",
        "--n-trials",
        2,
        "--pick",
        "params<1",
        "--confirm",
        "2,2",
        *QUICK,
        *sized,
    )
    assert code == 0, err
    assert "no completed trial meets the constraint params<1" in out
    assert "confirmed on" not in out  # nothing to race
    code, _, err = cli("best", "--study", "mo", "--pick", "params<1")
    assert (code, err.strip()) == (1, "search: error: no completed trial of study 'mo' meets --pick params<1")


def test_a_constraint_parses_and_admits():
    c = Constraint.parse(" params <= 1_000 ")
    assert (c.name, c.op, c.bound, c.text) == ("params", "<=", 1000.0, "params<=1000")

    class T:
        def __init__(self, attrs):
            self.user_attrs = attrs

    assert c.admits(T({"n_params": 1000})) and not c.admits(T({"n_params": 1001}))
    assert Constraint.parse("params<1000").admits(T({"n_params": 999})) is True
    assert Constraint.parse("params<1000").admits(T({"n_params": 1000})) is False
    assert Constraint.parse("latency>=2").admits(T({"costs": {"latency": 2.0}}))
    assert not Constraint.parse("latency>2").admits(T({"costs": {"latency": 2.0}}))
    assert not Constraint.parse("latency<2").admits(T({}))  # not measured: not admitted
    for bad in ("params<=inf", "params<=nan", "params<=x"):
        with pytest.raises(SearchError):
            Constraint.parse(bad)
    assert parse_objective("params, accuracy") == ("accuracy", ("params",))
    assert parse_objective("latency") == (None, ("latency",))


def test_the_python_api_takes_costs_and_a_pick(workdir):
    import search

    (workdir / "space.yaml").write_text(SPACE)
    study = search.tune(
        dataset="synthetic", study="api", costs=("params",), pick="params<=10000", space="space.yaml",
        n_trials=4, max_epochs=1, confirm=False,
    )  # fmt: skip
    assert len(study.optuna.directions) == 2
    assert study.pick.constraint == "params<=10000" and study.pick.user_attrs["n_params"] <= 10000


@pytest.mark.slow
def test_two_processes_on_postgresql_share_a_two_objective_study(tmp_path, own_storage):
    url = own_storage("postgresql")
    (tmp_path / "space.yaml").write_text(SPACE)
    args = ["run", "--study", "mo", "--storage", url, "--objective", "accuracy,params", "--n-trials", 5]
    args += ["--confirm", "0", "--space", "space.yaml", *QUICK]
    runs = [search(tmp_path, *args, popen={}) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], outs
    study = open_study(url, "mo")
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 10 and len(study.directions) == 2
    assert len({t.user_attrs["run"]["id"] for t in complete}) == 2  # both processes ran trials
    best = search(tmp_path, "best", "--study", "mo", "--storage", url, "--json", "--pick", "params<=10000")
    front = json.loads(best.stdout)["pareto_front"]
    assert sorted(r["number"] for r in front) == sorted(t.number for t in study.best_trials)
    small = [t for t in complete if t.user_attrs["n_params"] <= 10000]
    if small:
        assert json.loads(best.stdout)["number"] == max(small, key=lambda t: (t.values[0], -t.number)).number


def test_the_report_plots_the_front_and_the_metric(cli, sized):
    assert cli("run", "--study", "mo", "--objective", "accuracy,params", "--n-trials", 6, *QUICK, *sized)[0] == 0
    code, out, err = cli("report", "--study", "mo", "--output", "r.html")
    assert code == 0, err
    page = open("r.html").read()
    sections = re.findall(r"<section><h2>(.*?)</h2><p>.*?</p>(.*?)</section>", page, re.DOTALL)
    drawn = {title: "plotly-graph-div" in body for title, body in sections}
    assert drawn["Pareto front"] and drawn["Optimization history"] and drawn["Slices"], drawn
    assert "could not be drawn" not in page and "Learning curves" not in drawn
