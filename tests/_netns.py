"""Test hosts on this machine: network namespaces joined to a database host by veth pairs.

    db host (namespace)  10.X.Y.1 <--veth--> 10.X.Y.2  worker host 1 (namespace)
                         10.X.Z.1 <--veth--> 10.X.Z.2  worker host 2 ...

Every address lives inside namespaces made here. A link "goes down" by taking the db
host's end of the pair down: the worker's packets are then dropped without a word, as on
a real cluster (an established connection hangs; a new one finds no route after ARP
gives up). `remove()` kills every process of every host and deletes what was made.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import uuid


def _ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    prefix = ["ip", "netns", "exec", ns] if ns else []
    return subprocess.run([*prefix, "ip", *args], check=check, capture_output=True, text=True, timeout=30)


class Hosts:
    def __init__(self, workers: int = 2):
        tag = uuid.uuid4().hex[:6]
        self.db = f"sdb{tag}"
        self.workers = [f"sw{i}{tag}" for i in range(workers)]
        self.net = random.randint(16, 250)
        self.made: list[str] = []
        try:
            for ns in (self.db, *self.workers):
                _ip("netns", "add", ns)
                self.made.append(ns)
                _ip("link", "set", "lo", "up", ns=ns)
            for i, ns in enumerate(self.workers):
                w, d = f"w{i}{tag}", f"d{i}{tag}"
                _ip("link", "add", w, "type", "veth", "peer", "name", d)
                _ip("link", "set", w, "netns", ns)
                _ip("link", "set", d, "netns", self.db)
                _ip("addr", "add", f"10.{self.net}.{i}.2/30", "dev", w, ns=ns)
                _ip("addr", "add", f"10.{self.net}.{i}.1/30", "dev", d, ns=self.db)
                _ip("link", "set", w, "up", ns=ns)
                _ip("link", "set", d, "up", ns=self.db)
        except (subprocess.CalledProcessError, OSError) as exc:
            self.remove()
            raise RuntimeError(f"cannot make network namespaces: {getattr(exc, 'stderr', '') or exc}") from exc
        self.tag = tag

    def db_address(self, worker: int) -> str:
        """The database host's address as worker host ``worker`` reaches it."""
        return f"10.{self.net}.{worker}.1"

    def link(self, worker: int, up: bool) -> None:
        _ip("link", "set", f"d{worker}{self.tag}", "up" if up else "down", ns=self.db)

    def pids(self, ns: str) -> list[int]:
        out = _ip("netns", "pids", ns, check=False).stdout.split()
        return [int(p) for p in out]

    def kill_host(self, ns: str) -> None:
        """Every process of a host at once, as when the machine dies."""
        for pid in self.pids(ns):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def remove(self) -> None:
        for ns in reversed(self.made):
            self.kill_host(ns)
            _ip("netns", "del", ns, check=False)
        self.made.clear()
