"""Confirmation: ranking, racing, resumption after a kill, --jobs, and a sampler that never sees it."""

from __future__ import annotations

import json

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from search.confirmation import ConfirmConfig
from search.confirmation._rules import Candidate, race, ranked, replay
from search._errors import SearchError

FAST = ["--limit-train", "300", "--max-epochs", "3", "--seed", "1"]


def candidate(trial, *values):
    return Candidate(trial, {"lr": trial}, 0.9, dict(enumerate(values)))


def test_racing_drops_only_the_clearly_behind():
    a, b, c = candidate(0, 0.85, 0.86, 0.84), candidate(1, 0.80, 0.79, 0.81), candidate(2, 0.845, 0.855, 0.845)
    replay([a, b, c], 1)
    assert b.dropped and not a.dropped and not c.dropped  # 5 points behind after one round; 0.5 points is noise
    d, e = candidate(3, 0.85, 0.86, 0.85), candidate(4, 0.84, 0.85, 0.84)
    race([d, e], 2)
    assert e.dropped  # one point behind on both resamples: the paired difference has no spread
    f, g = candidate(5, 0.85, 0.83), candidate(6, 0.84, 0.86)
    race([f, g], 2)
    assert not f.dropped and not g.dropped  # they swap places: no verdict


def test_ranking_puts_the_fully_confirmed_first_by_mean():
    full_low, full_high, dropped = candidate(0, 0.80, 0.82), candidate(1, 0.84, 0.83), candidate(2, 0.95)
    order = ranked([full_low, dropped, full_high], resamples=2)
    assert [c.trial for c in order] == [1, 0, 2] and order[2].dropped
    assert order[0].mean == pytest.approx(0.835) and order[0].sd == pytest.approx(0.00707, abs=1e-4)


@pytest.mark.parametrize("text, parsed", [("5,3", (5, 3)), ("0", (0, 0)), ("4", (4, 3)), (" 2 , 1 ", (2, 1))])
def test_confirm_spec(text, parsed):
    spec = ConfirmConfig.parse(text)
    assert (spec.candidates, spec.resamples) == parsed


@pytest.mark.parametrize("text", ["a,b", "5,0", "-1,3", "1,2,3"])
def test_bad_confirm_spec(text, cli):
    with pytest.raises(SearchError):
        ConfirmConfig.parse(text)
    code, _, err = cli("run", "--study", "x", "--dataset", "synthetic", "--confirm", text)
    assert code == 2 and "argument --confirm" in err and len(err.strip().splitlines()) == 1


def load(name="s"):
    return optuna.load_study(study_name=name, storage="sqlite:///studies/studies.db")


def test_run_confirms_and_every_view_shows_both_figures(cli, fashion_root, workdir):
    code, out, err = cli("run", "--study", "s", "--data-dir", fashion_root, "--n-trials", 6, *FAST, "--confirm", "3,2")
    assert code == 0, err
    assert "confirmed on 2 fresh resamples" in out and "note: with 300 training samples" in out
    study, confirm = load(), load("s:confirm")
    assert len(study.trials) == 6  # the retrains are not trials of the searched study
    pairs = [(t.user_attrs["source_trial"], t.user_attrs["resample"]) for t in confirm.trials if t.state == TrialState.COMPLETE]
    assert len(pairs) == len(set(pairs)) >= 3
    summary = study.user_attrs["search:confirmation"]
    leader = summary["ranking"][0]
    assert leader["n"] == 2 and leader["mean"] == pytest.approx(sum(leader["values"].values()) / 2)

    code, out, _ = cli("best", "--study", "s", "--json")
    best = json.loads(out)
    assert best["picked_by"] == "confirmed mean" and best["number"] == leader["trial"]
    assert best["confirmed"]["mean"] == leader["mean"] and best["search_value"] == study.trials[leader["trial"]].value
    code, out, _ = cli("best", "--study", "s")
    assert "picked by its confirmed mean validation accuracy" in out and "search value" in out
    assert cli("export", "--study", "s", "--output", "b.yaml")[0] == 0
    source = yaml.safe_load((workdir / "b.yaml").read_text())["source"]
    assert source["picked_by"] == "confirmed mean" and source["confirmed"]["n"] == 2 and source["trial"] == leader["trial"]
    code, out, _ = cli("studies", "--json")
    (row,) = json.loads(out)["studies"]
    assert row["confirmed"] == leader["mean"] and row["best_value"] == max(t.value for t in study.trials if t.value is not None)


def test_an_unconfirmed_best_says_its_figure_is_optimistic(cli, fashion_root):
    assert cli("run", "--study", "s", "--data-dir", fashion_root, "--n-trials", 2, *FAST)[0] == 0
    code, out, _ = cli("best", "--study", "s")
    assert "picked by its search value" in out and "optimistic: not confirmed" in out
    code, out, _ = cli("best", "--study", "s", "--json")
    assert json.loads(out)["picked_by"] == "search value" and json.loads(out)["confirmed"] is None


def test_confirmation_never_changes_what_the_sampler_sees(cli, fashion_root, monkeypatch):
    """Twin studies, one confirmed: their next trials sample the same points."""
    import uuid

    import search._run

    # A continuing run mixes its run id into the sampler's seed; the twins' continuations share one.
    monkeypatch.setattr(search._run.uuid, "uuid4", lambda: uuid.UUID(int=7))
    for name, confirm in (("a", "3,2"), ("b", "0")):
        assert cli("run", "--study", name, "--data-dir", fashion_root, "--n-trials", 4, *FAST, "--confirm", confirm)[0] == 0
    for name in ("a", "b"):
        assert cli("run", "--study", name, "--data-dir", fashion_root, "--n-trials", 3, *FAST)[0] == 0
    assert [t.params for t in load("a").trials] == [t.params for t in load("b").trials]
    assert len(load("a:confirm").trials) > 0


def test_a_later_confirm_adds_candidates_without_redoing_retrains(cli, fashion_root):
    assert cli("run", "--study", "s", "--data-dir", fashion_root, "--n-trials", 6, *FAST, "--confirm", "2,2")[0] == 0
    before = {t.number: (t.value, t.datetime_complete) for t in load("s:confirm").trials}
    code, out, err = cli("confirm", "--study", "s", "--confirm", "4,2", "--data-dir", fashion_root)
    assert code == 0, err
    after = {t.number: (t.value, t.datetime_complete) for t in load("s:confirm").trials}
    assert {k: after[k] for k in before} == before and len(after) > len(before)
    assert load("s").user_attrs["search:confirmation"]["candidates"] == 4


def test_confirm_refuses_what_it_cannot_do(cli, workdir):
    code, _, err = cli("confirm", "--study", "none")
    assert code == 1 and "no study 'none'" in err and not (workdir / "studies").exists()
    code, _, err = cli("confirm", "--study", "none", "--confirm", "0")
    assert code == 1 and len(err.strip().splitlines()) == 1

def test_the_racing_rule_at_the_margin():
    from search.confirmation._rules import RACE_MARGIN
    lead, behind = candidate(0, 0.85), candidate(1, 0.85 - RACE_MARGIN - 0.001)
    race([lead, behind], 1)
    assert behind.dropped
