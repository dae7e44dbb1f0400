"""`search run` and `search confirm`: the search, then confirmation, with a summary and true messages on the way.

A run has two phases. The search runs trials; confirmation then races the leaders on
fresh resamples and measures the pick. A Ctrl-C (or SIGTERM) in either phase says how
to go on from where it stopped: the search's remaining trials (the interrupted trial's
parameters run first), or the confirmation (its finished retrains are kept).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

from objectives import DATASETS, DEVICES, METRICS, TASKS, DataConfig
from search._errors import RunStopped, SearchError
from search.cli._command_lines import confirm_line, continue_line
from search.cli._help import default, given_fields, storage_help
from search.cli._tracking_flags import add_tracking_flags, tracking_config
from search.confirmation import ConfirmConfig
from search.study._config import YARDSTICKS, RunConfig
from search.study._format import format_summary
from search.study._progress import LiveReporter, Progress
from search.study._pruners import PRUNERS
from search.study._samplers import SAMPLERS
from search.study._signals import EXIT_INTERRUPTED, INTERRUPTS
from search.workers._processes import planned, use_threads


def shared_options() -> argparse.ArgumentParser:
    """The options of both commands that train (search run, search confirm), declared once."""
    S = argparse.SUPPRESS
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--storage", default=S, help=storage_help())
    p.add_argument(
        "--data-dir",
        default=S,
        help=f"torchvision root: DIR/FashionMNIST/raw/... (default: {default(DataConfig, 'data_dir')})",
    )
    p.add_argument("--device", choices=DEVICES, default=S, help=f"(default: {default(RunConfig, 'device')})")
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
        "--fuse",
        type=int,
        metavar="K",
        default=S,
        help="trials a worker trains together as one batched model, each with its own learning rate, optimizer, "
        "seed and epochs (they share the first one's shape and batch size) (default: measured per shape: "
        "fused where it trains faster, as on narrow networks; 1: one at a time)",
    )
    p.add_argument(
        "--heartbeat",
        type=int,
        default=S,
        help="seconds between a running trial's heartbeats; a trial silent for twice that is failed and re-run "
        f"once (default: {default(RunConfig, 'heartbeat')}; 0: off)",
    )
    _add_confirm_flag(p)
    p.add_argument(
        "--pick",
        metavar="COST<=N",
        default=S,
        help='confirm and pick only among the trials that meet this constraint, e.g. "params<=100000" '
        "(costs: params, latency in µs a row)",
    )
    return p


def add_run_command(subparsers) -> None:
    """`search run`: its parser, beside its handler."""
    p = subparsers.add_parser(
        "run",
        parents=[shared_options()],
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
    p.add_argument("--study", default=S, help=f"study name (default: {default(RunConfig, 'study')})")
    p.add_argument(
        "--n-trials",
        type=int,
        default=S,
        help=f"trials to run now (default: {default(RunConfig, 'n_trials')}; with only --timeout, until it; "
        "in a study with a budget, until it is spent)",
    )
    p.add_argument(
        "--warm-start",
        metavar="STUDY",
        default=S,
        help="a new study's first trials: STUDY's pick and best configurations (up to 5; each where this "
        "run's space admits it, else one line saying why)",
    )
    p.add_argument(
        "--warm-start-storage", metavar="URL", default=S, help="where --warm-start's study is (default: --storage)"
    )
    p.add_argument(
        "--total-trials",
        type=int,
        default=S,
        help="a new study's budget: it ends at exactly this many trials, however many workers and machines "
        "join it (each stops when none is left; a trial cut short by Ctrl-C or a lost worker runs again)",
    )
    p.add_argument("--timeout", type=float, default=S, help="stop starting trials after this many seconds")
    p.add_argument("--sampler", choices=SAMPLERS, default=S, help=f"(default: {default(RunConfig, 'sampler')})")
    p.add_argument("--pruner", choices=PRUNERS, default=S, help=f"(default: {default(RunConfig, 'pruner')})")
    p.add_argument(
        "--seed",
        type=int,
        default=S,
        help=f"seeds the split, the sampler and each trial (default: {default(RunConfig, 'seed')})",
    )
    p.add_argument("--dataset", choices=DATASETS, default=S, help=f"(default: {default(DataConfig, 'dataset')})")
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
        help=f"with --data: share of the rows held out as the test split, stratified (default: {default(DataConfig, 'test_fraction')})",
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
        "--bins",
        type=int,
        default=S,
        metavar="N",
        help="with --data: each numeric column also as N quantile bins of the training rows, piecewise linear "
        f"(0: its standardised value alone; default: {default(DataConfig, 'bins')})",
    )
    p.add_argument(
        "--drop-missing-target",
        action="store_true",
        default=S,
        help="with --data: leave out the rows without a --target value (they are refused otherwise)",
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
        help=f"share of the training split held out for scoring (default: {default(DataConfig, 'validation_fraction')})",
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
        "--objective",
        dest="costs",
        metavar="METRIC,COST",
        default=S,
        help="a new study with several objectives: the metric and costs to minimise beside it, e.g. accuracy,params "
        "or rmse,latency (params: the model's parameter count; latency: its inference time per row on this "
        "device); Optuna keeps the Pareto front, `search best` lists it, --pick chooses on it (no pruning)",
    )
    p.add_argument(
        "--baseline",
        dest="yardstick",
        choices=YARDSTICKS,
        default=S,
        help="with --data: after confirmation, fit scikit-learn's HistGradientBoosting on the same resamples "
        "as a yardstick (default: hgb; none: skip it)",
    )
    add_tracking_flags(p)
    p.set_defaults(handler=cmd_run)


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


def cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from search.study._tune import ConfirmationInterrupted, search_and_confirm

    config = planned(run_config_from_args(args))
    use_threads(config)
    INTERRUPTS.install()  # SIGTERM (a scheduler stopping the job) ends the run as Ctrl-C does
    spec = config.confirm
    reporter = LiveReporter(
        config,
        Progress(
            config.n_trials,
            metric=config.metric_spec.name,
            timeout=config.timeout,
            confirm=None if not spec.given else (spec.candidates, spec.resamples or 5),
        ),
    )
    try:
        summary = search_and_confirm(config, reporter)
    except RunStopped as exc:  # say what is still owed, as after an interrupt
        raise SearchError(f"{exc}; continue with: {continue_line(argv, config.n_trials, exc.finished)}") from exc
    except ConfirmationInterrupted:
        print(
            f"\nsearch: interrupted during confirmation; the search's trials and the finished retrains are kept. "
            f"Continue the confirmation with: {confirm_line(argv, config)}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except KeyboardInterrupt as exc:
        print(
            f"\nsearch: interrupted; {_cut_short(getattr(exc, 'cut_short', 0))}. "
            f"Continue with: {continue_line(argv, config.n_trials, getattr(exc, 'finished', 0))}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        INTERRUPTS.restore()
    print(format_summary(summary, continue_line(argv, None, None), reporter.summary_note))
    return 0


def _cut_short(trials: int) -> str:
    if trials == 0:
        return "no trial was running"
    if trials == 1:
        return "the running trial is marked failed, and its parameters run first when the study goes on"
    return f"the {trials} running trials are marked failed, and their parameters run first when the study goes on"


def with_pick(args: argparse.Namespace, given: dict) -> dict:
    """``given`` with --pick folded into the confirmation's configuration, where it steers the choice."""
    if "pick" in vars(args):
        given["confirm"] = dataclasses.replace(given.get("confirm") or ConfirmConfig(), pick=args.pick)
    return given


def run_config_from_args(args: argparse.Namespace) -> RunConfig:
    from search.study._costs import parse_objective

    given = with_pick(args, given_fields(args, RunConfig))
    data = given_fields(args, DataConfig)
    explicit = frozenset(given) | frozenset(data)
    if "costs" in given:
        metric, given["costs"] = parse_objective(given["costs"])
        if metric is not None and given.get("metric", metric) != metric:
            raise SearchError(f"--objective names {metric}, but --metric {given['metric']}; give the metric once")
        given["metric"] = metric or given.get("metric")
        explicit |= {"metric"} if metric else set()
    given["tracking"] = tracking_config(args)
    data["seed"] = given.get("seed", RunConfig.seed)
    if ("timeout" in given or "total_trials" in given) and "n_trials" not in given:
        given["n_trials"] = None
    return RunConfig(**given, data=DataConfig(**data), explicit=explicit)
