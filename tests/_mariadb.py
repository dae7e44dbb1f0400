"""A throwaway MariaDB server a test owns: its own folder, port and socket, optionally in a namespace.

Its root user is reachable from anywhere with no password (the server lives only in a
namespace a test made); `status()` reads the server's global counters.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _pg import free_port


def mariadb_bin() -> str | None:
    return shutil.which("mariadbd", path="/usr/sbin:/usr/bin") and shutil.which("mariadb-install-db")


class MariaDB:
    def __init__(self, netns: str | None = None, host: str = "127.0.0.1"):
        if mariadb_bin() is None:
            raise RuntimeError("MariaDB (mariadbd, mariadb-install-db) is not installed")
        self.netns, self.port = netns, free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="search-mariadb-"))
        self.dir.chmod(0o777)
        self.socket = self.dir / "sock"
        self.data = self.dir / "data"
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={self.data}",
                "--user=mysql",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        prefix = ["ip", "netns", "exec", netns] if netns else []
        # No name lookups (a reverse lookup of a namespace address would stall every
        # connection) and no flush per commit (a test server, as PostgreSQL's fsync=off).
        self.process = subprocess.Popen(
            [
                *prefix,
                "/usr/sbin/mariadbd",
                "--no-defaults",
                f"--datadir={self.data}",
                f"--socket={self.socket}",
                f"--port={self.port}",
                f"--bind-address={'0.0.0.0' if netns else host}",
                "--user=mysql",
                f"--pid-file={self.dir / 'pid'}",
                f"--log-error={self.dir / 'log'}",
                "--skip-name-resolve",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-buffer-pool-size=64M",
                "--skip-log-bin",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "log").read_text() if (self.dir / "log").exists() else ""
                self.remove()
                raise RuntimeError(f"mariadbd did not start: {log[-500:]}")
            time.sleep(0.1)
        self.sql("CREATE USER root@'%'; GRANT ALL ON *.* TO root@'%'; CREATE DATABASE test;")

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        return (
            subprocess.run(
                ["mariadb", f"--socket={self.socket}", "-u", "root", "-e", "SELECT 1"], capture_output=True, timeout=30
            ).returncode
            == 0
        )

    def sql(self, statements: str) -> str:
        return subprocess.run(
            ["mariadb", f"--socket={self.socket}", "-u", "root", "-N", "-B", "-e", statements],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout

    def status(self, *names: str) -> dict[str, int]:
        quoted = ",".join(f"'{n}'" for n in names)
        rows = self.sql(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({quoted})").splitlines()
        return {name: int(value) for name, value in (row.split("\t") for row in rows)}

    def remove(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)
