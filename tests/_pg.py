"""A throwaway PostgreSQL cluster a test owns: its own folder, its own port, nothing shared.

`initdb` refuses to run as root, so the cluster runs as the `postgres` user; its
superuser is called root so URLs read as they do against the machine's own server.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PgCluster:
    """``start()``, ``stop()``, ``url``; ``remove()`` stops it and deletes its folder."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        netns: str | None = None,
        settings: dict[str, str] | None = None,
    ):
        self.bin = pg_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL's initdb is not installed")
        self.host, self.port, self.netns = host, port or free_port(), netns
        self.dir = Path(tempfile.mkdtemp(prefix="search-pg-"))
        os.chmod(self.dir, 0o777)
        self.data = self.dir / "data"
        self._as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "root", "--no-sync"])
        if settings:  # e.g. log_statement: every statement a client sends, in the log
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        if netns:  # reachable only inside the namespaces a test made: trust the hosts there
            with open(self.data / "pg_hba.conf", "a") as hba:
                hba.write("host all all 0.0.0.0/0 trust\n")

    @property
    def url(self) -> str:
        return f"postgresql://root@{self.host}:{self.port}/postgres"

    def _as_postgres(self, command: list[str], timeout: float = 120) -> None:
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        subprocess.run(
            [*prefix, "runuser", "-u", "postgres", "--", *command],
            check=True,
            timeout=timeout,
            capture_output=True,
            cwd=self.dir,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses={self.host} -c fsync=off"
        self._as_postgres(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", "start"]
        )

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def remove(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
