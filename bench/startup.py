"""How long each `search` command takes to start, on a small stored study (the README's figures).

    .venv/bin/python bench/startup.py

Each command runs 5 times in a fresh process; the median wall time is printed, with the
time of a bare `python -c pass` and of `import torch` for scale.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEARCH = [sys.executable, "-m", "search"]
ROUNDS = 5


def wall(command: list[str], cwd: Path) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run(
            [
                *SEARCH,
                "run",
                "--study",
                "s",
                "--dataset",
                "synthetic",
                "--n-trials",
                "5",
                "--max-epochs",
                "2",
                "--limit-train",
                "500",
            ],
            cwd=work,
            check=True,
            capture_output=True,
        )
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import torch'": [sys.executable, "-c", "import torch"],
            "search studies": [*SEARCH, "studies"],
            "search trials --study s": [*SEARCH, "trials", "--study", "s"],
            "search best --study s": [*SEARCH, "best", "--study", "s"],
            "search export --study s --output b.yaml": [*SEARCH, "export", "--study", "s", "--output", "b.yaml"],
            "search space": [*SEARCH, "space"],
            "search delete --study none-such --yes (refused)": None,
            "search run --help": [*SEARCH, "run", "--help"],
        }
        print(f"median of {ROUNDS} runs, seconds")
        for name, command in commands.items():
            if command is None:
                command = [*SEARCH, "delete", "--study", "none-such", "--yes"]
                times = []
                for _ in range(ROUNDS):
                    started = time.perf_counter()
                    subprocess.run(command, cwd=work, capture_output=True)
                    times.append(time.perf_counter() - started)
                seconds = statistics.median(times)
            else:
                seconds = wall(command, work)
            print(f"  {name:<48}{seconds:>6.2f}")


if __name__ == "__main__":
    main()
