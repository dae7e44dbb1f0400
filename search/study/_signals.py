"""Ctrl-C and SIGTERM: stop at a safe point, so a stored study is never left half-written.

Raising KeyboardInterrupt wherever the signal lands can cut a storage call in half (a
SQLite write lock left held, Optuna's ``tell`` interrupted). While trials run, a signal
only sets a flag: the training loop checks it between batches and ends the trial (which
Optuna marks FAIL), and the study stops after the trial in hand is recorded. A second
signal stops at once. Outside that window (loading data, waiting for workers) the
signal raises KeyboardInterrupt as usual.

Both handlers are installed explicitly: a process started in the background by a
non-interactive shell inherits an ignored SIGINT, and Ctrl-C must still reach it.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_INTERRUPTED = 130  # a run stopped by Ctrl-C or SIGTERM, as a shell reports SIGINT (128 + 2)


class Interrupted(KeyboardInterrupt):
    """A Ctrl-C (or SIGTERM) that stopped a search: the trials this run finished, and how many it cut short
    (failed, their parameters queued to run first)."""

    def __init__(self, finished: int, cut_short: int):
        super().__init__()
        self.finished, self.cut_short = finished, cut_short


class Interrupts:
    """The process's Ctrl-C and SIGTERM handling (one per process: see `INTERRUPTS`)."""

    def __init__(self) -> None:
        self.requested: int | None = None
        self._deferring = 0
        self._previous: dict[int, object] = {}
        self.on_sigterm: list = []  # called first on a SIGTERM (a parent passes it on to its worker processes)

    def install(self) -> None:
        for sig in _SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if signum == signal.SIGTERM:
            for listener in list(self.on_sigterm):
                listener()
        if self._deferring and self.requested is None:
            self.requested = signum
            return
        raise KeyboardInterrupt

    def stop_requested(self) -> bool:
        return self.requested is not None

    def check(self) -> None:
        """Raise KeyboardInterrupt if a signal came in while it was deferred."""
        if self.requested is not None:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Within this block a first signal is only recorded (see the module doc)."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1


INTERRUPTS = Interrupts()
