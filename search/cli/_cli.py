"""The `search` command line: the only place that turns errors into messages and exit codes."""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import traceback
from collections.abc import Callable, Sequence

from objectives import DATASETS, DEVICES, METRICS, TASKS, DataConfig
from search._errors import SearchError
from search.cli import _commands
from search.confirmation import ConfirmConfig
from search.storages import DEFAULT_STORAGE, STORAGE_ENV
from search.study._config import YARDSTICKS, RunConfig
from search.study._logging import quiet_optuna
from search.study._pruners import PRUNERS
from search.study._samplers import SAMPLERS

EXIT_ERROR = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _default(cls: type, name: str):
    """The default of dataclass field ``name``: help text reads it, so it is written once."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.default
    raise KeyError(name)


def _storage_help() -> str:
    return f"storage URL (default: ${STORAGE_ENV}, else {DEFAULT_STORAGE})"


def _shared_options() -> argparse.ArgumentParser:
    """The options of both commands that train (search run, search confirm), declared once."""
    S = argparse.SUPPRESS
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--storage", default=S, help=_storage_help())
    p.add_argument(
        "--data-dir",
        default=S,
        help=f"torchvision root: DIR/FashionMNIST/raw/... (default: {_default(DataConfig, 'data_dir')})",
    )
    p.add_argument("--device", choices=DEVICES, default=S, help=f"(default: {_default(RunConfig, 'device')})")
    p.add_argument(
        "--jobs",
        type=int,
        default=S,
        help="worker processes on this machine, sharing the trials (or the retrains) (default: one per core, or "
        "one per GPU; $SEARCH_JOBS sets it); any storage, SQLite included",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=S,
        help="torch threads per worker process (default: the cores shared out among the workers: 1 when there "
        "is a worker per core)",
    )
    p.add_argument(
        "--heartbeat",
        type=int,
        default=S,
        help="seconds between a running trial's heartbeats; a trial silent for twice that is failed and re-run "
        f"once (default: {_default(RunConfig, 'heartbeat')}; 0: off)",
    )
    _add_confirm_flag(p)
    return p


def _add_run(subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        parents=[_shared_options()],
        help="run (or continue) a study",
        description="Run trials of a study, creating it if new and continuing it if not.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""examples:
  search run --study demo --dataset synthetic --n-trials 20 --max-epochs 5
  search run --study fmnist --n-trials 50                 # FashionMNIST in ./data
  search run --study fmnist --timeout 3600 --pruner hyperband
  search run --study fmnist --space space.yaml --storage postgresql://me@db/optuna
  search run --study churn --data churn.csv --target churned --drop customer_id
  search run --study house --data house.csv --target price --task regression
  search run --study scans --data scans.npz --model models.py:build --space space.yaml""",
    )
    S = argparse.SUPPRESS
    p.add_argument("--study", default=S, help=f"study name (default: {_default(RunConfig, 'study')})")
    p.add_argument(
        "--n-trials",
        type=int,
        default=S,
        help=f"trials to run now (default: {_default(RunConfig, 'n_trials')}; with only --timeout, until it)",
    )
    p.add_argument("--timeout", type=float, default=S, help="stop starting trials after this many seconds")
    p.add_argument("--sampler", choices=SAMPLERS, default=S, help=f"(default: {_default(RunConfig, 'sampler')})")
    p.add_argument("--pruner", choices=PRUNERS, default=S, help=f"(default: {_default(RunConfig, 'pruner')})")
    p.add_argument(
        "--seed",
        type=int,
        default=S,
        help=f"seeds the split, the sampler and each trial (default: {_default(RunConfig, 'seed')})",
    )
    p.add_argument("--dataset", choices=DATASETS, default=S, help=f"(default: {_default(DataConfig, 'dataset')})")
    p.add_argument(
        "--data",
        dest="data_file",
        metavar="FILE",
        default=S,
        help="your own data: a .csv, .parquet or .npz (arrays x and y) file",
    )
    p.add_argument("--target", default=S, help="with --data: the column to predict")
    p.add_argument(
        "--test-fraction",
        type=float,
        default=S,
        help=f"with --data: share of the rows held out as the test split, stratified (default: {_default(DataConfig, 'test_fraction')})",
    )
    p.add_argument(
        "--test-data",
        dest="test_file",
        metavar="FILE",
        default=S,
        help="with --data: the test rows in a file of their own",
    )
    p.add_argument(
        "--fill-missing",
        choices=("median",),
        default=S,
        help="with --data: fill missing numbers with the column's median (text: a category of its own)",
    )
    p.add_argument(
        "--drop",
        action="append",
        metavar="COLUMN",
        default=S,
        help="with --data: leave this column out (repeat for more)",
    )
    p.add_argument(
        "--validation-fraction",
        type=float,
        default=S,
        help=f"share of the training split held out for scoring (default: {_default(DataConfig, 'validation_fraction')})",
    )
    p.add_argument("--limit-train", type=int, default=S, help="train on only this many samples (quick runs)")
    p.add_argument(
        "--space", default=S, help="search space YAML file (docs/search-space.md); default: the built-in space"
    )
    p.add_argument("--max-epochs", type=int, default=S, help="epochs range 1..N (default space: 1..20)")
    p.add_argument(
        "--model",
        default=S,
        metavar="MODULE:FUNCTION",
        help="your own model function (module.path:function or file.py:function) taking (input_shape, "
        "num_outputs, **model parameters) and returning an nn.Module (default: the built-in MLP)",
    )
    p.add_argument("--task", choices=TASKS, default=S, help="with --data: what the target is (default: classification)")
    p.add_argument(
        "--metric",
        choices=tuple(METRICS),
        default=S,
        help="what trials are scored and ranked by (default: accuracy; rmse for regression)",
    )
    p.add_argument(
        "--baseline",
        dest="yardstick",
        choices=YARDSTICKS,
        default=S,
        help="with --data: after confirmation, fit scikit-learn's HistGradientBoosting on the same resamples "
        "as a yardstick (default: hgb; none: skip it)",
    )
    p.set_defaults(handler=_handler("cmd_run"))


def _add_confirm_flag(p) -> None:
    d = ConfirmConfig()
    p.add_argument(
        "--confirm",
        type=_confirm_spec,
        default=argparse.SUPPRESS,
        metavar="K[,R]",
        help=f"after the search, race the K best configurations and the baseline on R resamples the search "
        f"never validated on (5 folds of a small pool, 3 holdouts of a large one), then measure the pick "
        f"on as many fresh ones: the figure to quote (default: up to {d.candidates}, as many as fit in "
        f"the search's own time; 0: skip)",
    )


def _confirm_spec(text: str) -> ConfirmConfig:
    try:
        return ConfirmConfig.parse(text)
    except SearchError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(", but ", 1)[-1]) from None


def _add_confirm(subparsers) -> None:
    p = subparsers.add_parser(
        "confirm",
        parents=[_shared_options()],
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
    p.set_defaults(handler=_handler("cmd_confirm"))


def _handler(name: str):
    """A command of `search.cli._run_command`, imported when it runs (torch is not needed to parse)."""

    def handle(args: argparse.Namespace, argv: Sequence[str]) -> int:
        from search.cli import _run_command

        return getattr(_run_command, name)(args, argv)

    return handle


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
    _add_run(subparsers)
    _add_confirm(subparsers)
    _commands.add_all(subparsers, _storage_help())
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
