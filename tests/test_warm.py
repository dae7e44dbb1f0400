"""Warm start (search/study/_warm.py): a new study's first trials are an earlier study's best configurations."""

from __future__ import annotations

import optuna
import pytest
from _procs import open_study, search

QUICK = ["--dataset", "synthetic", "--max-epochs", "1", "--confirm", "0", "--pruner", "none"]
DB = "sqlite:///studies/studies.db"


def test_a_new_study_starts_from_the_earlier_studys_best(cli, workdir):
    assert cli("run", "--study", "old", "--n-trials", 5, *QUICK)[0] == 0
    old = optuna.load_study(study_name="old", storage=DB)
    code, out, err = cli("run", "--study", "new", "--warm-start", "old", "--n-trials", 3, *QUICK)
    assert code == 0, err
    new = optuna.load_study(study_name="new", storage=DB)
    assert new.trials[0].user_attrs.get("baseline")  # the textbook default still comes first
    warm = [t for t in new.trials if t.user_attrs.get("warm_start") and t.state.is_finished()]
    best = sorted((t for t in old.trials if t.params != new.trials[0].params), key=lambda t: -t.value)
    assert warm[0].user_attrs["warm_start"] == f"old#{best[0].number}" and warm[0].params == best[0].params
    assert [t.number for t in warm] == list(range(1, len(warm) + 1))  # straight after the baseline
    assert all(t.params == old.trials[int(t.user_attrs["warm_start"].split("#")[1])].params for t in warm)


def test_a_configuration_the_space_cannot_take_is_left_out_with_a_line(cli, workdir):
    assert cli("run", "--study", "old", "--n-trials", 3, *QUICK)[0] == 0
    (workdir / "narrow.yaml").write_text("lr: {low: 0.0005, high: 0.0006}\n")  # the baseline's 1e-3 is outside
    code, out, err = cli(
        "run", "--study", "new", "--warm-start", "old", "--space", "narrow.yaml", "--n-trials", 1, *QUICK
    )
    assert code == 0, err
    assert "note: trial 0 of 'old' is not taken: lr=0.001 is outside this space's lr (0.0005 to 0.0006)" in err


def test_warm_start_from_another_storage_counts_within_a_budget(cli, workdir):
    other = f"sqlite:///{workdir}/other.db"
    assert cli("run", "--study", "old", "--storage", other, "--n-trials", 5, *QUICK)[0] == 0
    args = ["run", "--study", "new", "--warm-start", "old", "--warm-start-storage", other, "--total-trials", 3]
    code, out, err = cli(*args, *QUICK)
    assert code == 0, err
    new = optuna.load_study(study_name="new", storage=DB)
    assert len(new.trials) == 3 and all(t.user_attrs.get("warm_start") for t in new.trials[1:])


def test_warm_start_is_refused_where_it_cannot_apply(cli, workdir):
    assert cli("run", "--study", "old", "--n-trials", 1, *QUICK)[0] == 0
    code, _, err = cli("run", "--study", "x", "--warm-start", "nope", "--n-trials", 1, *QUICK)
    assert code == 1 and "--warm-start 'nope': no such study in" in err
    assert "x" not in optuna.get_all_study_names(DB)  # a refused run makes nothing
    code, _, err = cli("run", "--study", "old", "--warm-start", "old", "--n-trials", 1, *QUICK)
    assert code == 1 and "--warm-start 'old' starts a new study, and study 'old' exists" in err


def test_the_python_api_warm_starts(cli, workdir):
    import search

    assert cli("run", "--study", "old", "--n-trials", 2, *QUICK)[0] == 0
    study = search.tune(dataset="synthetic", study="api", warm_start="old", n_trials=2, max_epochs=1, confirm=False)
    assert [t.user_attrs.get("warm_start") for t in study.optuna.trials][1:2] == ["old#1"]


@pytest.mark.slow
def test_two_processes_warm_start_one_study_on_postgresql(tmp_path, own_storage):
    """Started together, exactly one process makes the study: the earlier study's best are queued once."""
    url = own_storage("postgresql")
    quick = [*QUICK, "--storage", url]
    assert search(tmp_path, "run", "--study", "old", "--n-trials", 5, *quick).returncode == 0
    old = open_study(url, "old")
    runs = [
        search(tmp_path, "run", "--study", "new", "--warm-start", "old", "--n-trials", 4, *quick, popen={})
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], outs
    new = open_study(url, "new")
    assert len(new.trials) == 8 and all(t.state.is_finished() for t in new.trials)
    warm = [t.user_attrs["warm_start"] for t in new.trials if t.user_attrs.get("warm_start")]
    assert len(warm) == len(set(warm)) >= 1  # each earlier configuration once, however many processes joined
    assert all(new.trials[n].params == old.trials[int(w.split("#")[1])].params for n, w in enumerate(warm, 1))
    assert sum(bool(t.user_attrs.get("baseline")) for t in new.trials) == 1
