"""The one run path: `search run` and `search.tune` both go through `search.study._tune.search_and_confirm`."""

from __future__ import annotations

import search.study._tune


def test_the_cli_and_the_api_run_one_function(cli, workdir, monkeypatch):
    calls = []
    real = search.study._tune.search_and_confirm

    def seen(config, reporter):
        calls.append((config.study, type(reporter).__name__))
        return real(config, reporter)

    monkeypatch.setattr(search.study._tune, "search_and_confirm", seen)
    code, out, err = cli(
        "run", "--study", "c", "--dataset", "synthetic", "--n-trials", 1, "--max-epochs", 1, "--limit-train", 200
    )
    assert code == 0, err
    study = search.tune(dataset="synthetic", study="a", n_trials=1, max_epochs=1, confirm=False)
    assert [c for c, _ in calls] == ["c", "a"] and study.summary.run_states["COMPLETE"] == 1
    assert calls[0][1] == "LiveReporter" and calls[1][1] != "LiveReporter"  # live lines on the command line only


def test_a_quiet_reporter_hears_everything_and_says_nothing(capsys):
    from search.study._progress import Reporter

    quiet = Reporter()
    quiet.note("x"), quiet.trial(None, None), quiet.epoch(None, None), quiet.searched(None), quiet.plan(None)
    quiet.retrain(None, None), quiet.waiting(1), quiet.search_waiting(1, 0), quiet.nothing_to_confirm("none")
    assert capsys.readouterr() == ("", "")
