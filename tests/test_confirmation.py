"""Confirmation through the CLI: resamples apart from the search's split, the baseline, the figures every view shows,
and many processes reaching one answer."""

from __future__ import annotations

import json
import signal
import uuid

import numpy as np
import optuna
import pytest
import yaml
from _procs import open_study, read_until, search, trials_in, wait_for
from optuna.trial import TrialState

from objectives.data import Resample, pool_indices
from search._errors import SearchError
from search.confirmation import ConfirmConfig
from search.confirmation._plan import FOLDS, derived_seed, leaders, resample_keys, trim_to_budget

FAST = ["--limit-train", "300", "--max-epochs", "3", "--seed", "1"]
DB = "sqlite:///studies/studies.db"


def load(name="s"):
    return optuna.load_study(study_name=name, storage=DB)


@pytest.mark.parametrize(
    "text, parsed", [("5,3", (5, 3, True)), ("0", (0, None, True)), ("4", (4, None, True)), (" 2 , 4 ", (2, 4, True))]
)
def test_confirm_spec(text, parsed):
    spec = ConfirmConfig.parse(text)
    assert (spec.candidates, spec.resamples, spec.given) == parsed


@pytest.mark.parametrize("text", ["a,b", "5,1", "-1,3", "1,2,3"])
def test_bad_confirm_spec(text, cli):
    with pytest.raises(SearchError):
        ConfirmConfig.parse(text)
    code, _, err = cli("run", "--study", "x", "--dataset", "synthetic", "--confirm", text)
    assert code == 2 and "argument --confirm" in err and len(err.strip().splitlines()) == 1


# --- the resamples -------------------------------------------------------------------------------------------


def test_a_holdout_never_validates_on_the_search_s_validation_rows():
    labels = np.repeat(np.arange(4), 250)
    search_train, search_val = pool_indices(labels, 0.1, 7, True, Resample())
    for key in resample_keys(7, "holdout", "race", 3) + resample_keys(7, "holdout", "estimate", 3):
        train, val = pool_indices(labels, 0.1, 7, True, Resample.from_key(key))
        assert not set(val) & set(search_val)  # validated only on rows the search trained on
        assert len(val) == len(search_val) and set(train) | set(val) == set(range(1000)) and not set(train) & set(val)
        assert np.bincount(labels[val]).tolist() == np.bincount(labels[search_val]).tolist()  # stratified


def test_k_fold_validates_every_row_once_and_the_estimate_has_its_own_partition():
    labels = np.repeat(np.arange(3), [50, 30, 40])
    race_keys, fresh_keys = resample_keys(7, "kfold", "race", FOLDS), resample_keys(7, "kfold", "estimate", FOLDS)
    for keys in (race_keys, fresh_keys):
        vals = [pool_indices(labels, 0.1, 7, True, Resample.from_key(k))[1] for k in keys]
        assert sorted(np.concatenate(vals).tolist()) == list(range(120))  # a partition: every row validates once
        assert max(map(len, vals)) - min(map(len, vals)) <= 1
    race_folds = {frozenset(pool_indices(labels, 0.1, 7, True, Resample.from_key(k))[1]) for k in race_keys}
    fresh_folds = {frozenset(pool_indices(labels, 0.1, 7, True, Resample.from_key(k))[1]) for k in fresh_keys}
    assert not race_folds & fresh_folds  # the estimate's folds are not the race's
    search_val = frozenset(pool_indices(labels, 0.1, 7, True, Resample())[1])
    assert search_val not in race_folds | fresh_folds


def test_resample_seeds_are_never_the_study_s_own():
    for seed in range(200):
        assert all(derived_seed(seed, role, i) != seed for role in ("race", "estimate") for i in range(10))
    assert resample_keys(0, "holdout", "race", 3) != resample_keys(0, "holdout", "estimate", 3)


def test_the_leaders_cut_to_the_search_s_time_keep_the_best_and_the_baseline():
    def trial(name, seconds=1.0):
        return optuna.trial.create_trial(
            value=0.5, params={}, distributions={}, user_attrs={"seconds": seconds, "name": name}
        )

    def names(trials):
        return [t.user_attrs["name"] for t in trials]

    ranked = [trial("best"), trial("second"), trial("third"), trial("baseline")]
    baseline = ranked[-1]
    for budget, kept in (
        (100.0, ["best", "second", "third", "baseline"]),
        (21.0, ["best", "second", "baseline"]),
        (16.0, ["best", "baseline"]),
        (1.0, ["best", "baseline"]),
    ):
        chosen, cut = trim_to_budget(ranked, baseline, budget=budget, rounds=5, estimate=5)
        assert names(chosen) == kept and cut == 4 - len(kept), (
            budget
        )  # 5 rounds of each, then 5 of the pick, per second


# --- through the CLI -----------------------------------------------------------------------------------------


def test_run_confirms_and_every_view_shows_the_figure_to_quote(cli, fashion_root, workdir):
    code, out, err = cli("run", "--study", "s", "--data-dir", fashion_root, "--n-trials", 6, *FAST, "--confirm", "3,3")
    assert code == 0, err
    assert "confirmed on 3 folds (every row validates once" in out
    assert (
        "quote: validation accuracy" in out and "(search " in out and ", confirmation " in out
    )  # the wall time's split
    study = load()
    assert len(study.trials) == 6  # the retrains are not trials of the searched study
    summary = study.user_attrs["search:confirmation"]
    assert summary["scheme"] == "kfold" and summary["resamples"] == 3 and summary["estimate_resamples"] == 3
    leader, figure = summary["ranking"][0], summary["estimate"]
    assert figure["trial"] == leader["trial"] == summary["leader"] and figure["n"] == 3
    assert figure["low"] <= figure["mean"] <= figure["high"]
    assert set(figure["values"]).isdisjoint(
        leader["values"]
    )  # the quoted figure comes from resamples the race never used
    optimistic = study.best_value > figure["mean"]  # the note says so only when the search's figure is the higher
    assert ("note: with 300 training samples" in out) == optimistic, out
    baseline = next(t.number for t in study.trials if t.user_attrs.get("baseline"))
    assert baseline in {c["trial"] for c in summary["ranking"]}  # the textbook default always races
    from search.study._record import confirmed

    typed = confirmed(study.user_attrs)  # the stored JSON, read back as the typed result, writes the same JSON
    assert typed.pick.trial == leader["trial"] and typed.quote.mean == figure["mean"]
    assert json.loads(json.dumps(typed.to_dict())) == summary

    code, out, _ = cli("best", "--study", "s", "--json")
    best = json.loads(out)
    assert best["picked_by"] == "confirmation" and best["number"] == leader["trial"]
    assert (
        best["confirmed"]["quote"]["mean"] == figure["mean"]
        and best["search_value"] == study.trials[leader["trial"]].value
    )
    code, out, _ = cli("best", "--study", "s")
    assert "picked by confirmation; quote validation accuracy" in out and "95% interval" in out
    assert cli("export", "--study", "s", "--output", "b.yaml")[0] == 0
    source = yaml.safe_load((workdir / "b.yaml").read_text())["source"]
    assert (
        source["picked_by"] == "confirmation"
        and source["confirmed"]["quote"]["n"] == 3
        and source["trial"] == leader["trial"]
    )
    code, out, _ = cli("studies", "--json")
    (row,) = json.loads(out)["studies"]
    assert row["confirmed"] == figure["mean"] and row["best_value"] == max(
        t.value for t in study.trials if t.value is not None
    )


def test_an_unconfirmed_best_says_its_figure_is_optimistic(cli, fashion_root):
    assert cli("run", "--study", "s", "--data-dir", fashion_root, "--n-trials", 2, *FAST)[0] == 0
    code, out, _ = cli("best", "--study", "s")
    assert "picked by its search value" in out and "optimistic: not confirmed" in out
    code, out, _ = cli("best", "--study", "s", "--json")
    assert json.loads(out)["picked_by"] == "search value" and json.loads(out)["confirmed"] is None


def test_the_baseline_is_a_candidate_even_when_far_behind():
    study = optuna.create_study(direction="maximize")
    dist = {"lr": optuna.distributions.FloatDistribution(1e-5, 1.0, log=True)}

    def add(value, lr, **attrs):
        study.add_trial(optuna.trial.create_trial(value=value, params={"lr": lr}, distributions=dist, user_attrs=attrs))

    add(0.30, 1e-3, baseline=True)  # the textbook default, far behind
    add(0.91, 0.1), add(0.90, 0.05), add(0.90, 0.1), add(0.50, 0.01, diverged="loss became nan")
    chosen, baseline = leaders(study, 2, True)
    assert [t.number for t in chosen] == [
        1,
        2,
        0,
    ] and baseline.number == 0  # distinct configurations; the baseline joins
    chosen, _ = leaders(study, 5, True)
    assert [t.number for t in chosen] == [1, 2, 0]  # a repeated configuration once, a diverged trial never
    low = optuna.create_study(direction="minimize")
    low.add_trial(optuna.trial.create_trial(value=5.0, params={"lr": 0.1}, distributions=dist))
    low.add_trial(optuna.trial.create_trial(value=1.0, params={"lr": 0.2}, distributions=dist))
    assert [t.number for t in leaders(low, 1, False)[0]] == [1]  # lower is better for a minimised metric


def test_confirmation_never_changes_what_the_sampler_sees(cli, fashion_root, monkeypatch):
    """Twin studies, one confirmed: their next trials sample the same points."""
    import search.study._run

    # A continuing run mixes its run id into the sampler's seed; the twins' continuations share one.
    monkeypatch.setattr(search.study._run.uuid, "uuid4", lambda: uuid.UUID(int=7))
    for name, confirm in (("a", "3,3"), ("b", "0")):
        assert (
            cli("run", "--study", name, "--data-dir", fashion_root, "--n-trials", 4, *FAST, "--confirm", confirm)[0]
            == 0
        )
    for name in ("a", "b"):
        assert cli("run", "--study", name, "--data-dir", fashion_root, "--n-trials", 3, *FAST)[0] == 0
    assert [t.params for t in load("a").trials] == [t.params for t in load("b").trials]
    assert len(load("a:confirm").trials) > 0


def test_a_later_confirm_adds_candidates_without_redoing_retrains(cli, fashion_root):
    assert cli("run", "--study", "s", "--data-dir", fashion_root, "--n-trials", 6, *FAST, "--confirm", "1,3")[0] == 0
    before = {t.number: (t.value, t.datetime_complete) for t in load("s:confirm").trials}
    code, out, err = cli("confirm", "--study", "s", "--confirm", "3,3", "--data-dir", fashion_root)
    assert code == 0, err
    after = {t.number: (t.value, t.datetime_complete) for t in load("s:confirm").trials}
    assert {k: after[k] for k in before} == before and len(after) > len(before)
    assert load("s").user_attrs["search:confirmation"]["spec"] == "3,3"
    race_runs = [
        (t.user_attrs["source_trial"], t.user_attrs["resample"])
        for t in load("s:confirm").trials
        if t.state == TrialState.COMPLETE
    ]
    assert len(race_runs) == len(set(race_runs))  # the first confirmation's retrains were reused, not run again


def test_confirm_refuses_what_it_cannot_do(cli, workdir):
    code, _, err = cli("confirm", "--study", "none")
    assert code == 1 and "no study 'none'" in err and not (workdir / "studies").exists()
    code, _, err = cli("confirm", "--study", "none", "--confirm", "0")
    assert code == 1 and len(err.strip().splitlines()) == 1


def test_confirmation_names_are_reserved(cli, workdir):
    code, _, err = cli("run", "--study", "x:confirm", "--dataset", "synthetic", "--n-trials", 1)
    assert code == 1 and "--study 'x:confirm' ends in :confirm" in err and not (workdir / "studies").exists()
    from search import open_storage

    storage = open_storage(f"sqlite:///{workdir}/s.db")
    foreign = optuna.create_study(study_name="y:confirm", storage=storage)
    foreign.add_trial(optuna.trial.create_trial(value=1.0, params={}, distributions={}))
    assert (
        cli(
            "run",
            "--study",
            "y",
            "--storage",
            f"sqlite:///{workdir}/s.db",
            "--dataset",
            "synthetic",
            "--n-trials",
            1,
            "--limit-train",
            200,
            "--max-epochs",
            1,
        )[0]
        == 0
    )
    code, _, err = cli("confirm", "--study", "y", "--storage", f"sqlite:///{workdir}/s.db")
    assert code == 1 and "'y:confirm' exists and is not the confirmation of 'y'" in err
    assert len(optuna.load_study(study_name="y:confirm", storage=storage).trials) == 1  # untouched


def test_a_search_whose_trials_all_diverged_ends_with_its_summary_and_a_line(cli, workdir):
    (workdir / "wild.yaml").write_text("lr: 1.0e+6\noptimizer: sgd\nepochs: 2\nbatch_size: 32\n")
    code, out, err = cli(
        "run",
        "--study",
        "s",
        "--dataset",
        "synthetic",
        "--limit-train",
        300,
        "--space",
        "wild.yaml",
        "--n-trials",
        2,
        "--confirm",
        "2,3",
    )
    assert code == 0, err
    assert "this run:  2 trials" in out and "confirmation: nothing to confirm: every completed trial diverged" in out


def test_the_optimism_note_comes_only_when_the_search_value_beats_the_quote():
    import dataclasses

    from search import Confirmation, Quote, Ranked, RunSummary
    from search.study._format import format_summary

    pick = (Ranked(trial=1, params={}, search_value=0.8, mean=0.8, n=3),)
    states = {"COMPLETE": 3, "PRUNED": 0, "FAIL": 0}
    summary = RunSummary("s", "sqlite:///s.db", 1.0, states, states, 1, 0.8, {}, train_samples=300)
    note = "the best search value is optimistic"
    assert note in format_summary(summary, "search run")  # not confirmed: it is, on average

    def confirmed(quote: float, direction: str = "maximize") -> str:
        c = Confirmation(1, "auto", "kfold", "accuracy", direction, 1, pick, 3, 3, 1, estimate=Quote(1, quote, 3))
        return format_summary(dataclasses.replace(summary, confirmation=c), "search run")

    assert note in confirmed(0.75) and note not in confirmed(0.85) and note not in confirmed(0.8)
    assert note in confirmed(0.85, "minimize") and note not in confirmed(0.75, "minimize")
    assert note not in confirmed(0.8, "minimize")  # a quote equal to the search value: nothing optimistic


def test_the_messages_say_whether_confirmation_agrees():
    from search import Confirmation, Ranked
    from search.study._format import format_confirmation

    ranking = (
        Ranked(trial=7, params={}, search_value=0.8, mean=0.85, sd=0.01, n=5),
        Ranked(trial=3, params={}, search_value=0.9, mean=0.84, sd=0.01, n=5),
    )

    def summary(search_best: int) -> Confirmation:
        return Confirmation(1, "auto", "kfold", "accuracy", "maximize", 7, ranking, 5, 5, 2, search_best=search_best)

    disagree = format_confirmation(summary(3))
    assert any("the pick is trial 7" in line and "disagrees" in line for line in disagree)
    agree = format_confirmation(summary(7))
    assert any("the pick is trial 7: confirmation agrees with the search" in line for line in agree)
    assert not any("confirmation agrees" in line for line in disagree)


# --- many processes ------------------------------------------------------------------------------------------


def _retrains(url, name):
    try:
        confirm = open_study(url, name + ":confirm")
    except KeyError:  # not made yet
        return None, []
    done = [
        (t.user_attrs["source_trial"], t.user_attrs["resample"])
        for t in confirm.get_trials(deepcopy=False)
        if t.state == TrialState.COMPLETE and "resample" in t.user_attrs
    ]
    return confirm, done


SLOW_SPACE = "hidden_units: 128\nepochs: {low: 8, high: 12}\nbatch_size: 64\n"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["postgresql"])
def test_two_confirmations_at_once_store_one_summary(tmp_path, own_storage, kind):
    url = own_storage(kind)
    (tmp_path / "space.yaml").write_text(SLOW_SPACE)
    base = ["--study", "c", "--storage", url]
    made = search(
        tmp_path,
        "run",
        *base,
        "--dataset",
        "synthetic",
        "--limit-train",
        600,
        "--space",
        "space.yaml",
        "--n-trials",
        5,
        "--pruner",
        "none",
    )
    assert made.returncode == 0, made.stderr
    first = search(tmp_path, "confirm", *base, "--confirm", "4,3", popen={})
    second = search(tmp_path, "confirm", *base, "--confirm", "4,3", popen={})
    outs = [p.communicate(timeout=600) for p in (first, second)]
    assert first.returncode == second.returncode == 0, outs
    summary = open_study(url, "c").user_attrs["search:confirmation"]
    picks = [next(line for line in out.splitlines() if "the pick is trial" in line) for out, _ in outs]
    assert picks[0] == picks[1] and f"the pick is trial {summary['leader']}" in picks[0]
    assert not [c for c in summary["ranking"] if c["dropped"] and c["n"] == 0]  # nobody's retrain was lost
    _, done = _retrains(url, "c")
    assert len(done) == len(set(done))  # each retrain ran once, shared by the two


@pytest.mark.slow
def test_a_killed_confirmation_resumes_without_losing_its_candidates(tmp_path):
    url = f"journal:///{tmp_path}/c.log"
    (tmp_path / "space.yaml").write_text(SLOW_SPACE)
    base = ["--study", "k", "--storage", url, "--heartbeat", 1]
    made = search(
        tmp_path,
        "run",
        *base,
        "--dataset",
        "synthetic",
        "--limit-train",
        2000,
        "--space",
        "space.yaml",
        "--n-trials",
        3,
        "--pruner",
        "none",
    )
    assert made.returncode == 0, made.stderr
    worker = search(tmp_path, "confirm", *base, "--confirm", "3,3", popen={})
    wait_for(lambda: len(_retrains(url, "k")[1]) >= 1 and trials_in(url, "k:confirm", TrialState.RUNNING), timeout=180)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    confirm, _ = _retrains(url, "k")
    kept = {t.number: t.value for t in confirm.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE}

    result = search(
        tmp_path, "confirm", *base, "--confirm", "3,3"
    )  # at once: the dead retrain is taken over when its beat stops
    assert result.returncode == 0, result.stderr
    confirm, done = _retrains(url, "k")
    assert len(done) == len(set(done))  # no retrain ran twice
    assert {t.number: t.value for t in confirm.get_trials(deepcopy=False) if t.number in kept} == kept
    assert not [t for t in confirm.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    summary = open_study(url, "k").user_attrs["search:confirmation"]
    assert all(c["n"] == 3 or c["dropped"] for c in summary["ranking"]) and summary["estimate"]["n"] == 3


def test_jobs_share_a_confirmation(tmp_path):
    """This process is worker 0 and starts at once; the spawned worker joins the plan when it has started up."""
    url = f"journal:///{tmp_path}/c.log"
    (tmp_path / "space.yaml").write_text(SLOW_SPACE)
    base = ["--study", "j", "--storage", url]
    assert (
        search(
            tmp_path,
            "run",
            *base,
            "--dataset",
            "synthetic",
            "--limit-train",
            1000,
            "--space",
            "space.yaml",
            "--n-trials",
            4,
            "--pruner",
            "none",
        ).returncode
        == 0
    )
    result = search(tmp_path, "confirm", *base, "--confirm", "4,3", "--jobs", 2)
    assert result.returncode == 0, result.stderr
    workers = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("[w")}
    assert workers == {"[w0", "[w1"}
    _, done = _retrains(url, "j")
    assert len(done) == len(set(done)) >= 4


@pytest.mark.slow
def test_sigterm_during_confirmation_says_how_to_resume_it(tmp_path):
    (tmp_path / "space.yaml").write_text(SLOW_SPACE)
    url = f"sqlite:///{tmp_path}/s.db"
    run = search(
        tmp_path,
        "run",
        "--study",
        "t",
        "--storage",
        url,
        "--dataset",
        "synthetic",
        "--limit-train",
        1000,
        "--space",
        "space.yaml",
        "--n-trials",
        2,
        "--pruner",
        "none",
        "--confirm",
        "2,3",
        popen={},
    )
    read_until(run.stdout, "confirming")
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 130 and "Traceback" not in err
    assert f"Continue the confirmation with: search confirm --study t --storage {url} --confirm 2,3" in err
    resumed = search(tmp_path, "confirm", "--study", "t", "--storage", url, "--confirm", "2,3")
    assert resumed.returncode == 0, resumed.stderr
    assert len(optuna.load_study(study_name="t", storage=url).trials) == 2  # the search ran no more trials


def _plan(spec: str, candidates=(1, 2), plan_id=None, after=None):
    from search.confirmation._plan import Plan

    return Plan(
        spec,
        tuple(candidates),
        ("kfold/5/7/0",),
        ("kfold/5/8/0",),
        "kfold",
        0.0,
        0.25,
        candidates[0],
        None,
        id=plan_id,
        after=after,
    )


def test_the_current_plan_is_the_newest_of_its_own_settings_chain():
    from search.confirmation._plan import current

    stored = [
        _plan("3,2", plan_id=0),
        _plan("5,3", plan_id=1),
        _plan("3,2", plan_id=3, after=0),
        _plan("3,2", plan_id=2, after=0),
        _plan("3,2", plan_id=4, after=2),
    ]
    assert current(stored, "3,2").id == 4  # 0, then the earliest that follows it (2, not 3), then 4
    assert current(stored, "5,3").id == 1
    assert current(stored, "4,4") is None


def test_a_process_adopts_an_unfinished_plan_and_follows_a_finished_one():
    from search.confirmation._plan import adopt

    confirm = optuna.create_study()
    first = adopt(confirm, _plan("3,2"), finished=lambda plan: False)
    assert (
        adopt(confirm, _plan("3,2", candidates=(1, 5)), finished=lambda plan: False).id == first.id
    )  # unfinished: joined
    assert (
        adopt(confirm, _plan("3,2"), finished=lambda plan: True).id == first.id
    )  # finished, same work: nothing to redo
    later = adopt(
        confirm, _plan("3,2", candidates=(1, 5)), finished=lambda plan: True
    )  # finished, new work: a new plan
    assert later.id != first.id and later.after == first.id and later.candidates == (1, 5)
    assert adopt(confirm, _plan("5,3"), finished=lambda plan: True).after is None  # another setting: a chain of its own


def _searched_with_one_running(tmp_path, url, heartbeat):
    """A study of two finished trials and one trial another process is running (asked through its own storage)."""
    from search import open_storage

    made = search(
        tmp_path,
        "run",
        "--study",
        "w",
        "--storage",
        url,
        "--dataset",
        "synthetic",
        "--limit-train",
        300,
        "--max-epochs",
        1,
        "--n-trials",
        2,
        "--pruner",
        "none",
    )
    assert made.returncode == 0, made.stderr
    study = optuna.load_study(study_name="w", storage=open_storage(url, heartbeat=heartbeat))
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))[-1]
    return study, study.ask(fixed_distributions=done.distributions)


@pytest.mark.slow
def test_confirmation_waits_for_the_search_s_running_trials(tmp_path):
    """A trial still running elsewhere may be the best: the leaders are chosen once it is told."""
    url = f"sqlite:///{tmp_path}/s.db"
    study, running = _searched_with_one_running(tmp_path, url, heartbeat=60)
    confirm = search(tmp_path, "confirm", "--study", "w", "--storage", url, "--confirm", "2,2", popen={})
    waited = read_until(confirm.stdout, "before choosing the leaders")
    assert "waiting for 1 search trial still running" in waited and "confirming" not in waited
    study.tell(running, 1.0)  # the best accuracy there is
    out, err = confirm.communicate(timeout=300)
    assert confirm.returncode == 0, err
    assert f"confirming trials {running.number}," in out or f"confirming trial {running.number} " in out, out


@pytest.mark.slow
def test_a_dead_worker_s_running_trial_is_failed_by_its_heartbeat_and_the_confirmation_goes_on(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    study, running = _searched_with_one_running(tmp_path, url, heartbeat=1)  # it beat once, and never again
    result = search(tmp_path, "confirm", "--study", "w", "--storage", url, "--confirm", "2,2", "--heartbeat", 1)
    assert result.returncode == 0, result.stderr
    assert "waiting for 1 search trial" in result.stdout and "the pick is trial" in result.stdout
    assert study._storage.get_trial(running._trial_id).state == TrialState.FAIL
