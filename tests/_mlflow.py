"""A real `mlflow server` for a test (SQLite backend, a free port), started and stopped by it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from _procs import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    def __init__(self, folder: Path, port: int | None = None):
        self.folder, self.port = folder, port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> MlflowServer:
        mlflow = Path(sys.executable).with_name("mlflow")
        command = [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{self.folder}/mlflow.db"]
        command += ["--artifacts-destination", str(self.folder / "artifacts"), "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workers", "1"]
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 - the server's, for as long as it runs
        self.process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True, env=os.environ)
        wait_for(self.healthy, timeout=120, every=0.2)
        return self

    def healthy(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"mlflow server exited: {(self.folder / 'server.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 9)  # the server and its uvicorn workers
            self.process.wait(timeout=30)
            # Gone when its port refuses: a worker still dying holds the socket and drops what connects.
            wait_for(self.refuses, timeout=30, every=0.1)
        self.process = None

    def refuses(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
        except ConnectionRefusedError:
            return True
        except OSError:
            pass
        return False

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.uri)
