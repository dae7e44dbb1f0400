"""The `search` command line: the only place that turns errors into messages and exit codes."""

from __future__ import annotations

import argparse
import re
import sys
import traceback
from collections.abc import Callable, Sequence

from search._errors import SearchError
from search.cli import _commands
from search.cli._confirm_command import add_confirm_command
from search.cli._help import storage_help
from search.cli._run_command import add_run_command
from search.study._logging import quiet_optuna

EXIT_ERROR = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="search",
        description="Hyperparameter search for PyTorch models with Optuna: FashionMNIST, your tables and arrays, or your model; pruned, confirmed, stored in a database.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  search run --study demo --dataset synthetic --n-trials 20 --max-epochs 5",
    )
    parser.add_argument("--version", action="version", version=f"search {_version()}")
    parser.add_argument("--verbose", action="store_true", help="on an error, also print its cause and traceback")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    add_run_command(subparsers)
    add_confirm_command(subparsers)
    _commands.add_all(subparsers, storage_help())
    for sub in subparsers.choices.values():
        sub.add_argument(
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="on an error, also print its cause and traceback",
        )
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("search")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_optuna()
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace, Sequence[str]], int] = args.handler
    try:
        return handler(args, argv)
    except SearchError as exc:  # objectives' errors too: one root
        if args.verbose:  # the cause a one-line message leaves out (a driver's full error, say)
            traceback.print_exception(exc, file=sys.stderr)
        print(f"search: error: {flagged(str(exc), parser)}", file=sys.stderr)
        return EXIT_ERROR


_NAMED = re.compile(r"`([a-z][a-z0-9_]*)`")


def flagged(message: str, parser: argparse.ArgumentParser) -> str:
    """``message`` with each option named as the core names it (`n_trials`) spelled as typed here (--n-trials)."""
    flags = _flags(parser)
    return _NAMED.sub(lambda m: flags.get(m.group(1), m.group(0)), message)


def _flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each option's destination (a configuration's field) and its flag, over every command's parser."""
    flags: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags = _flags(sub) | flags
        elif action.option_strings:
            flags.setdefault(action.dest, next(o for o in action.option_strings if o.startswith("--")))
    return flags
