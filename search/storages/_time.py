"""The storage's own clock, which every host reads: the Redis server's time, or a journal file's file system's."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from search._optuna import journal_file_path, redis_time


def storage_clock(backend) -> Callable[[], float]:
    """The storage's own clock: the Redis server's time, or the file system's for a journal file."""
    path = journal_file_path(backend)
    if path is not None:
        return FileClock(Path(str(path) + ".clock"))
    return RedisClock(backend)


class RedisClock:
    """The Redis server's time: every host reads the one clock."""

    def __init__(self, backend):
        self.backend = backend

    def __call__(self) -> float:
        return redis_time(self.backend)


class FileClock:
    """The time of the file system a journal lives on: a file beside it, touched, then its modification time.

    On a network file system the server stamps the time, so every host reads one clock.
    """

    def __init__(self, path: Path):
        self.path = path

    def __call__(self) -> float:
        try:
            os.utime(self.path, None)
        except FileNotFoundError:
            self.path.touch()
        return os.stat(self.path).st_mtime
