"""`search run` and `search confirm`: the search, then confirmation, with a summary and true messages on the way.

A run has two phases. The search runs trials; confirmation then races the leaders on
fresh resamples and measures the pick. A Ctrl-C (or SIGTERM) in either phase says how
to go on from where it stopped: the search's remaining trials (the interrupted trial's
parameters run first), or the confirmation (its finished retrains are kept).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from collections.abc import Sequence

from objectives import DataConfig
from search._errors import RunStopped, SearchError
from search.storages import redact
from search.study._config import RunConfig
from search.study._format import format_confirmation, format_summary
from search.study._progress import LiveReporter, Progress
from search.study._signals import EXIT_INTERRUPTED, INTERRUPTS
from search.study._tune import confirm
from search.workers._processes import planned, use_threads


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


def cmd_confirm(args: argparse.Namespace, argv: Sequence[str]) -> int:
    given = _pick(args, RunConfig)
    data = _pick(args, DataConfig)
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


def command_line(argv: Sequence[str]) -> str:
    """The command as the user typed it, passwords hidden (``--storage=URL`` too), for 'continue with' lines."""
    return "search " + shlex.join(redact(a) for a in argv)


def continue_line(argv: Sequence[str], n_trials: int | None, done: int | None) -> str:
    """The command that goes on with the study: with the trials still owed when a run was cut short."""
    argv = list(argv)
    if n_trials is not None and done is not None and done < n_trials:
        argv = _without(argv, "--n-trials") + ["--n-trials", str(n_trials - done)]
    return command_line(argv)


def confirm_line(argv: Sequence[str], config: RunConfig) -> str:
    """`search confirm` for the study and storage of a `search run` command line."""
    keep = ["--study", "--storage", "--data-dir", "--device", "--jobs", "--heartbeat", "--confirm"]
    out = ["confirm"]
    argv = list(argv)
    for i, arg in enumerate(argv):
        name = arg.split("=", 1)[0]
        if name in keep:
            out += [arg] if "=" in arg else [arg, argv[i + 1]] if i + 1 < len(argv) else [arg]
    if not any(a.split("=", 1)[0] == "--study" for a in out):
        out += ["--study", config.study]
    return command_line(out)


def _without(argv: list[str], flag: str) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == flag:
            skip = True
            continue
        if arg.startswith(flag + "="):
            continue
        out.append(arg)
    return out


def _pick(args: argparse.Namespace, cls: type) -> dict:
    """The options the user gave that are fields of ``cls``; absent ones keep the dataclass default."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names}


def run_config_from_args(args: argparse.Namespace) -> RunConfig:
    given = _pick(args, RunConfig)
    data = _pick(args, DataConfig)
    explicit = frozenset(given) | frozenset(data)
    given.pop("confirm", None)
    if "confirm" in vars(args):
        given["confirm"] = args.confirm
    data["seed"] = given.get("seed", RunConfig.seed)
    if "timeout" in given and "n_trials" not in given:
        given["n_trials"] = None
    return RunConfig(**given, data=DataConfig(**data), explicit=explicit)
