"""The command lines a run prints for going on: as typed, with the trials still owed, or as `search confirm`."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from search.storages import redact


def command_line(argv: Sequence[str]) -> str:
    """The command as the user typed it, passwords hidden (``--storage=URL`` too), for 'continue with' lines."""
    return "search " + shlex.join(redact(a) for a in argv)


def continue_line(argv: Sequence[str], n_trials: int | None, done: int | None) -> str:
    """The command that goes on with the study: with the trials still owed when a run was cut short."""
    argv = list(argv)
    if n_trials is not None and done is not None and done < n_trials:
        argv = _without(argv, "--n-trials") + ["--n-trials", str(n_trials - done)]
    return command_line(argv)


def confirm_line(argv: Sequence[str], config) -> str:
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
