"""A study-wide trial budget (`--total-trials`): exactly N trials, however many workers and machines join."""

from __future__ import annotations

import optuna
import pytest
from _procs import open_study, search
from optuna.trial import TrialState

QUICK = ["--dataset", "synthetic", "--max-epochs", "1", "--confirm", "0", "--pruner", "none"]
DB = "sqlite:///studies/studies.db"


def states(url: str, name: str) -> dict[str, int]:
    trials = open_study(url, name).get_trials(deepcopy=False)
    return {s.name: sum(t.state == s for t in trials) for s in TrialState if any(t.state == s for t in trials)}


def test_runs_share_the_budget_and_stop_when_it_is_spent(cli):
    code, out, err = cli("run", "--study", "b", "--total-trials", 5, "--n-trials", 3, *QUICK)
    assert code == 0, err
    assert "5 trials: 3 complete, 0 pruned, 0 failed, 2 waiting (a budget of 5: 2 to run)" in out
    code, out, err = cli("run", "--study", "b", *QUICK)  # no --n-trials: until the budget is spent
    assert code == 0, err
    assert "this run:  2 trials" in out and "(a budget of 5: spent)" in out
    assert "its budget of 5 trials is spent: run a new study for more" in out and "continue it with" not in out
    assert states(DB, "b") == {"COMPLETE": 5}
    code, out, err = cli("run", "--study", "b", "--n-trials", 4, *QUICK)  # nothing left: no trial, no error
    assert code == 0 and "this run:  0 trials" in out and states(DB, "b") == {"COMPLETE": 5}, err


def test_the_budget_is_set_when_the_study_is_made(cli):
    assert cli("run", "--study", "b", "--total-trials", 3, "--n-trials", 1, *QUICK)[0] == 0
    assert cli("run", "--study", "plain", "--n-trials", 1, *QUICK)[0] == 0
    code, _, err = cli("run", "--study", "b", "--total-trials", 4, *QUICK)
    assert code == 1 and "was made with a budget of 3 trials, but this run asks for --total-trials 4" in err
    code, _, err = cli("run", "--study", "plain", "--total-trials", 4, *QUICK)
    assert code == 1 and "was made with no trial budget, but this run asks for --total-trials 4" in err
    assert len(optuna.load_study(study_name="plain", storage=DB).trials) == 1  # a refused run changes nothing
    code, _, err = cli("run", "--study", "c", "--total-trials", 0, *QUICK)
    assert (code, err.strip()) == (1, "search: error: --total-trials is 0, but must be >= 1")


def test_the_python_api_takes_a_budget(workdir):
    import search

    study = search.tune(dataset="synthetic", study="api", total_trials=3, n_trials=10, max_epochs=1, confirm=False)
    assert sum(study.summary.run_states.values()) == 3 and study.summary.total_trials == 3


@pytest.mark.slow
def test_three_processes_asked_for_20_each_end_at_exactly_30(tmp_path, own_storage):
    """Optuna's MaxTrialsCallback overshoots with many workers (optuna#2907); the budget's queue does not.
    One of the three runs two worker processes, the others one."""
    url = own_storage("postgresql")
    args = ["run", "--study", "b", "--storage", url, "--total-trials", 30, "--n-trials", 20, *QUICK]
    runs = [search(tmp_path, *args, "--jobs", jobs, popen={}) for jobs in (1, 2, 1)]
    outs = [p.communicate(timeout=600) for p in runs]
    assert [p.returncode for p in runs] == [0, 0, 0], outs
    assert states(url, "b") == {"COMPLETE": 30}
    ran = [int(out.split("this run:  ")[1].split()[0]) for out, _ in outs]
    assert sum(ran) == 30 and all(n <= 20 for n in ran), ran
