"""One run of a study, the search then the confirmation: what `search run` and `search.tune` both call.

What the run has to tell as it goes (a trial finished, the confirmation's plan, a wait) goes
to a `search.study._progress.Reporter`: the command line's prints live lines, the API's quiet one
hears nothing.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from search._errors import NothingToConfirm
from search.study._config import RunConfig
from search.study._progress import Reporter
from search.study._summary import RunSummary


class ConfirmationInterrupted(KeyboardInterrupt):
    """A Ctrl-C (or SIGTERM) during the confirmation: the search's trials are all stored."""


def search_and_confirm(config: RunConfig, reporter: Reporter) -> RunSummary:
    """Run ``config.n_trials`` more trials of ``config.study`` (with ``config.jobs`` workers), then confirm
    its leaders unless ``config.confirm`` says not; the summary, with the confirmation's in it."""
    from search.study._run import run_study
    from search.workers._workers import run_workers

    started = time.perf_counter()
    if config.jobs > 1:
        summary = run_workers(config, on_note=reporter.note)
    else:
        summary = run_study(config, on_trial=reporter.trial, on_epoch=reporter.epoch, on_note=reporter.note)
    searched = time.perf_counter() - started
    reporter.searched(summary)
    if config.confirm.enabled and summary.best_number is not None:
        try:
            summary = dataclasses.replace(summary, confirmation=confirm(config, reporter))
        except NothingToConfirm as exc:
            reporter.nothing_to_confirm(str(exc))
        except KeyboardInterrupt as exc:
            raise ConfirmationInterrupted() from exc
    return dataclasses.replace(summary, wall_seconds=time.perf_counter() - started, search_seconds=searched)


def confirm(config: RunConfig, reporter: Reporter) -> dict[str, Any]:
    """Confirm the leaders of ``config.study`` (`search confirm`), telling ``reporter`` on the way."""
    from search.confirmation import run_confirmation

    return run_confirmation(
        config,
        config.confirm,
        on_trial=reporter.retrain,
        on_plan=reporter.plan,
        on_wait=reporter.waiting,
        on_search_wait=reporter.search_waiting,
    )
