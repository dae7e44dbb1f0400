"""How long a worker waits on its storage: every call the study makes, timed at the storage's door.

On a cluster the question is whether the database or the training limits a study. The
study's storage object (Optuna's cache in front of an RDB storage, or the journal
storage) is the one door every storage call of a study goes through, so timing its
methods measures what the worker waited, cache hits included (they cost nothing), and
nothing else. Calls from the thread that runs the trials are the waiting; the heartbeat
thread's calls happen beside the training and are counted apart.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from optuna.storages import BaseStorage

from search._optuna import BaseHeartbeat


@dataclass(frozen=True)
class StorageTime:
    """The storage calls a run's workers waited on, and for how long, against their working time."""

    calls: int = 0  # made by the threads that run trials
    seconds: float = 0.0  # spent inside those calls
    background_calls: int = 0  # made by heartbeat threads, beside the training
    wall_seconds: float = 0.0  # the workers' time, summed over workers

    def __add__(self, other: StorageTime) -> StorageTime:
        return StorageTime(
            self.calls + other.calls,
            self.seconds + other.seconds,
            self.background_calls + other.background_calls,
            self.wall_seconds + other.wall_seconds,
        )

    @property
    def share(self) -> float:
        """The fraction of the workers' time spent waiting on the storage."""
        return self.seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


# Every method a study calls on its storage: the public API, and the heartbeat interface
# (Optuna's optimize loop calls `_get_stale_trial_ids` before each trial).
# The storage's heartbeat settings are read from the object itself, never from the database: not calls.
_SETTINGS = {"get_heartbeat_interval", "get_heartbeat_stale_trial_callback"}
_METHODS = sorted(
    {name for name in dir(BaseStorage) if not name.startswith("_") and callable(getattr(BaseStorage, name))}
    | set(BaseHeartbeat.__abstractmethods__) - _SETTINGS
)


class StorageClock:
    """Wraps ``storage``'s methods on the instance; `time()` reads the totals so far."""

    def __init__(self, storage: BaseStorage) -> None:
        self._owner = threading.get_ident()
        self.calls = 0
        self.seconds = 0.0
        self.background_calls = 0
        self._depth: dict[int, int] = {}  # per thread: a method calling another is one call
        for name in _METHODS:
            method = getattr(storage, name, None)
            if method is not None:
                setattr(storage, name, self._timed(method))

    def _timed(self, method: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            thread = threading.get_ident()
            depth = self._depth.get(thread, 0)
            self._depth[thread] = depth + 1
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                if depth == 0:  # the outermost call: counted, and the thread forgotten (heartbeat threads come and go)
                    del self._depth[thread]
                    self._count(thread, time.perf_counter() - started)
                else:
                    self._depth[thread] = depth

        timed.__name__ = getattr(method, "__name__", "method")
        return timed

    def count_call(self, seconds: float) -> None:
        """Count a call made around the wrapped methods (a batch of buffered writes), from this thread."""
        self._count(threading.get_ident(), seconds)

    def _count(self, thread: int, seconds: float) -> None:
        if thread == self._owner:
            self.calls += 1
            self.seconds += seconds
        else:
            self.background_calls += 1

    def time(self, wall_seconds: float, since: StorageTime | None = None) -> StorageTime:
        """The totals, less ``since`` (a reading taken earlier), over ``wall_seconds`` of work."""
        base = since or StorageTime()
        return StorageTime(
            calls=self.calls - base.calls,
            seconds=self.seconds - base.seconds,
            background_calls=self.background_calls - base.background_calls,
            wall_seconds=wall_seconds,
        )


def attach(storage: BaseStorage) -> StorageClock:
    """The clock on ``storage``, made on first use (a study's storage is timed once)."""
    clock = getattr(storage, "_search_clock", None)
    if clock is None:
        clock = StorageClock(storage)
        storage._search_clock = clock  # type: ignore[attr-defined]
    return clock
