"""Optuna's gRPC storage proxy: one process holds the database for hundreds of workers.

Each worker on a database holds two connections (its trials' and its heartbeat's); past
about fifty workers a PostgreSQL server runs out. `search storage-proxy` serves a study's
storage with Optuna's own proxy server (`optuna.storages.run_grpc_proxy_server`'s parts), and
workers reach it as ``grpc://HOST:PORT`` through Optuna's `GrpcStorageProxy`. Where this
differs from Optuna, and why:

- **Heartbeats.** Optuna's proxy carries no heartbeat, so a killed worker's trial would run
  for ever. A worker beats by writing the system attribute `BEAT_REQUEST`; the proxy notes
  when it arrived (its own clock, no database write) and fails the stale trials of every
  study itself (queueing each once more, as a worker would). Every age is then read on one
  clock, however far the workers' clocks drift.
- **A dead link.** Optuna's client waits for ever on a call; each call here has a deadline
  (`NETWORK_TIMEOUTS`' read timeout), and a proxy that cannot be reached or does not answer
  in time is a lost storage (`search._errors.is_storage_error`): the worker waits for it, as
  for a database restart.
"""

from __future__ import annotations

import sys
import threading
import time
import warnings
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from search._errors import SearchError
from search._optuna import BaseHeartbeat, GrpcStorageHooks, grpc_deadline, grpc_proxy_server, rdb_heartbeats
from search.storages._heartbeat import PROMISE_ATTR, _GuardedBeat, _Promising, _unmarked, check_interval

BEAT_REQUEST = "search:beat-request"  # a worker's beat, carried to the proxy, recorded on the database's clock
STALE_CHECK_SECONDS = 1.0  # how often the proxy looks for stale trials
PROXY_THREADS = 32  # calls served at once: a call holds a thread for its round trip to the database
# The proxy's own heartbeat setting: the floor of every trial's grace (2 s); each trial is judged by its worker's promise.
PROXY_HEARTBEAT = 1


def grpc_address(url: str) -> tuple[str, int]:
    """``grpc://HOST:PORT`` -> (HOST, PORT); a URL without a port is refused."""
    rest = url.split("://", 1)[1].rstrip("/")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SearchError(f"storage {url!r} needs a host and a port: grpc://HOST:PORT")
    return host.strip("[]"), int(port)


class HeartbeatGrpcStorage(_Promising, GrpcStorageHooks):
    """Optuna's proxy client whose running trials beat through the proxy (see the module's note)."""

    def __init__(self, host: str, port: int, heartbeat_interval: int | None, timeout: float) -> None:
        check_interval(heartbeat_interval, None)
        with warnings.catch_warnings():  # "experimental" since Optuna 4.2
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            super().__init__(host=host, port=port)
        self._heartbeat_interval, self._timeout = heartbeat_interval, timeout
        self._guard = _GuardedBeat()
        grpc_deadline(self, timeout)

    def __setstate__(self, state: dict[str, Any]) -> None:  # a spawned worker's copy: its own channel, with deadlines
        super().__setstate__(state)
        grpc_deadline(self, self._timeout)

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        created = super().create_new_trial(study_id, self._template(template_trial))
        if template_trial is None or template_trial.state == TrialState.RUNNING:
            self._first_beat(created)
        return created

    def _interval(self) -> int | None:
        return self._heartbeat_interval

    def _grace(self) -> float:
        return 2.0 * (self._heartbeat_interval or 0)

    def record_heartbeat(self, trial_id: int) -> None:
        # A beat that fails (the proxy restarting) is one line, and the thread beats on.
        self._guard(lambda t: self.set_trial_system_attr(t, BEAT_REQUEST, 1), trial_id)

    def stale_trial_ids(self, study_id: int) -> list[int]:
        return []  # the proxy fails stale trials itself, on the database's clock

    def get_heartbeat_interval(self) -> int | None:
        return self._heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> None:
        return None


def open_grpc(url: str, heartbeat: int | None, connect_timeout: float, read_timeout: float) -> BaseStorage:
    """A client of the proxy at ``url``, once the proxy answers (a `SearchError` if it does not in time)."""
    host, port = grpc_address(url)
    try:
        import grpc  # noqa: F401  (the `grpc` extra)
    except ImportError as exc:
        raise SearchError(
            f"storage {url} needs gRPC, which is not installed; pip install -e '.[grpc]' (or: pip install grpcio protobuf)"
        ) from exc
    storage = HeartbeatGrpcStorage(host, port, heartbeat, read_timeout)
    try:
        storage.wait_server_ready(timeout=connect_timeout)
    except ConnectionError as exc:
        raise SearchError(
            f"no storage proxy answers at {url} (waited {connect_timeout:.0f}s); start the storage proxy on that "
            "host first (docs/storages.md)"
        ) from exc
    return storage


class StorageProxy:
    """Optuna's proxy server on ``storage``, which takes its workers' beats and fails their stale trials.

    ``storage`` is opened with a heartbeat (its stale-trial rule and retry); ``port`` 0 takes any free port.
    A beat costs the proxy no database write: it notes when the beat arrived, on its own clock, and a trial
    is stale when no beat of it arrived for its grace (under load a write could wait behind the calls in
    flight and make a live trial look dead). A trial the proxy has heard no beat of since it started (it was
    restarted) is given a full grace from when it first sees it; one that beats to the database itself (a
    worker on the database) is judged by the database's rule.
    """

    def __init__(self, storage: BaseStorage, host: str, port: int, threads: int = PROXY_THREADS) -> None:
        if not isinstance(storage, BaseHeartbeat) or not storage.get_heartbeat_interval():
            raise SearchError("the storage behind a proxy must be opened with a heartbeat")
        self.backend = storage
        # The proxy is no worker: a trial's promise and beats are its worker's, never the proxy's (as a worker,
        # it would write its own interval over the worker's promise and a beat of its own at each creation).
        storage._template = lambda template: (
            _unmarked(template) if template and template.state != TrialState.RUNNING else template
        )  # type: ignore[attr-defined]
        storage._promise = storage._first_beat = lambda trial_id: None  # type: ignore[attr-defined]
        storage.beats_when_made = lambda: False  # type: ignore[attr-defined]
        self._beats: dict[int, float] = {}  # trial id: time.monotonic() of its last beat's arrival
        self._first_seen: dict[int, float] = {}
        self._running: set[int] = set()  # the running trials of every study, gathered during one look
        storage.stale_trial_ids = self._stale_trial_ids  # type: ignore[attr-defined]
        self.storage = optuna.storages.get_storage(storage)  # Optuna's cache in front of an RDB storage
        self._set_system_attr = self.storage.set_trial_system_attr
        self.storage.set_trial_system_attr = self._system_attr  # type: ignore[method-assign]
        self.server, self.port = grpc_proxy_server(self.storage, host, port, threads)
        if not self.port:
            raise SearchError(f"cannot serve on {host}:{port} (taken, or not an address of this machine)")
        self.looks = 0  # the looks for stale trials done so far
        self._stop = threading.Event()
        self._checker = threading.Thread(target=self._fail_stale, name="stale-trials", daemon=True)

    def _system_attr(self, trial_id: int, key: str, value: Any) -> None:
        if key == BEAT_REQUEST:
            self._beats[trial_id] = time.monotonic()
        else:
            self._set_system_attr(trial_id, key, value)

    def _stale_trial_ids(self, study_id: int) -> list[int]:
        database_now, running = rdb_heartbeats(self.backend, study_id, PROMISE_ATTR)
        now, stale = time.monotonic(), []
        for tid, (database_beat, promise) in running.items():
            grace = self.backend._grace_of(promise)  # type: ignore[attr-defined]
            if grace is None:
                continue  # its worker promised no beat: never judged
            if tid in self._beats:  # it beats through this proxy
                age = now - self._beats[tid]
            elif database_beat is not None and tid not in self._first_seen:  # a worker on the database
                age = (database_now - database_beat).total_seconds()
            else:  # not heard of since this proxy started: a full grace from now
                age = now - self._first_seen.setdefault(tid, now)
            if age > grace:
                stale.append(tid)
        self._running.update(running)
        return stale

    def _fail_stale(self) -> None:
        """Every study's stale trials failed (and queued again once), as a worker does before each trial."""
        while not self._stop.wait(STALE_CHECK_SECONDS):
            try:
                self._running = set()
                for frozen in self.storage.get_all_studies():
                    study = optuna.load_study(study_name=frozen.study_name, storage=self.storage)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        optuna.storages.fail_stale_trials(study)
                for gone in (set(self._beats) | set(self._first_seen)) - self._running:  # finished: forgotten
                    self._beats.pop(gone, None)
                    self._first_seen.pop(gone, None)
                self.looks += 1
            except Exception as exc:  # noqa: BLE001 - a database restart: the next look tries again
                print(f"search storage-proxy: stale trials not checked ({type(exc).__name__})", file=sys.stderr)

    def start(self) -> StorageProxy:
        self.server.start()
        self._checker.start()
        return self

    def stop(self, grace: float = 1.0) -> None:
        self._stop.set()
        self.server.stop(grace).wait()
        self._checker.join()
