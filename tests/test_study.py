"""Study orchestration: fault windows at the edges of a run."""

from __future__ import annotations

import sqlalchemy.exc

import search._study


def test_an_outage_during_the_summary_waits_and_succeeds(cli, monkeypatch, capsys):
    """The trials are stored; a database that blinks while the summary is read is waited for."""
    real = search._study.summarize
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise sqlalchemy.exc.OperationalError("SELECT trials", {}, Exception("connection refused"))
        return real(*args, **kwargs)

    monkeypatch.setattr(search._study, "summarize", flaky)
    monkeypatch.setattr(search._study, "_POLL_SECONDS", 0.01)
    code, out, err = cli("run", "--study", "s", "--dataset", "synthetic", "--n-trials", 1, "--max-epochs", 1, "--limit-train", 200)
    assert code == 0 and "Traceback" not in err
    assert "reconnecting" in err and "the storage is back" in err and "this run:  1 trials" in out
    assert len(calls) == 2


def test_a_plot_that_fails_for_another_reason_says_so():
    from search._report import _plot

    def broken(study):
        raise ValueError("boom")

    def too_few(study):
        raise ValueError("Cannot evaluate parameter importances with only a single trial.")

    assert _plot(broken, None) == "This plot could not be drawn: ValueError: boom"
    assert _plot(too_few, None).startswith("Not enough trials for this plot yet")
