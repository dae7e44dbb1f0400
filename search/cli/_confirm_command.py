"""`search confirm`: the leaders of a study raced on fresh resamples, the pick, and the figure to quote."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from objectives import DataConfig
from search._errors import SearchError
from search.cli._command_lines import command_line
from search.cli._help import given_fields
from search.cli._run_command import shared_options, with_pick
from search.study._config import RunConfig
from search.study._format import format_confirmation
from search.study._progress import LiveReporter
from search.study._signals import EXIT_INTERRUPTED, INTERRUPTS
from search.study._tune import confirm
from search.workers._processes import planned, use_threads


def add_confirm_command(subparsers) -> None:
    """`search confirm`: its parser, beside its handler."""
    p = subparsers.add_parser(
        "confirm",
        parents=[shared_options()],
        help="retrain a study's leaders on fresh resamples and rank them by the mean",
        description="Race the K best configurations of a study and its baseline on resamples the search never "
        "validated on, pick the best by paired comparisons, and measure the pick on fresh resamples: the figure "
        "to quote. Resumable (finished retrains are kept); --jobs N workers, and any number of processes "
        "confirming the same study, share the work and reach one answer.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""examples:
  search confirm --study fmnist                    # as many leaders as fit in the search's time
  search confirm --study fmnist --confirm 10,5 --jobs 2 --storage journal:///studies/fmnist.log""",
    )
    p.add_argument("--study", required=True, help="study name")
    p.set_defaults(handler=cmd_confirm)


def cmd_confirm(args: argparse.Namespace, argv: Sequence[str]) -> int:
    given = with_pick(args, given_fields(args, RunConfig))
    data = given_fields(args, DataConfig)
    config = planned(RunConfig(**given, data=DataConfig(**data)))
    use_threads(config)
    if not config.confirm.enabled:
        raise SearchError("--confirm 0 confirms nothing; give K,R (e.g. 5,3)")
    INTERRUPTS.install()
    try:
        summary = confirm(config, LiveReporter(config))
    except KeyboardInterrupt:
        print(
            f"\nsearch: interrupted; finished retrains are kept. Continue with: {command_line(argv)}", file=sys.stderr
        )
        return EXIT_INTERRUPTED
    finally:
        INTERRUPTS.restore()
    print("\n".join([f"study {config.study!r}", *format_confirmation(summary)]))
    return 0
