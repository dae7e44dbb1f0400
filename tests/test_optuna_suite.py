"""Optuna's own storage, heartbeat and study tests, run against this project's storages on every backend.

The pinned Optuna's source distribution is fetched with pip (nothing of it is copied into this
repository). `optuna_suite_plugin.py` answers Optuna's StorageSupplier with `search.open_storage`
on SQLite, a journal file, Redis, PostgreSQL and MariaDB. A test that fails here is checked again
with Optuna's own storage on the same server (the control): only a test that passes for plain
Optuna and fails for this project is a regression, unless it is one of `DEVIATIONS`, each a
deliberate difference that docs/storages.md explains.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from importlib.metadata import version
from pathlib import Path

import pytest
from _procs import new_database

pytestmark = pytest.mark.slow

SUITES = [
    "tests/storages_tests/test_storages.py",
    "tests/storages_tests/test_heartbeat.py",
    "tests/study_tests/test_study.py",
]
BACKENDS = ["sqlite", "journal", "redis", "postgresql", "mysql"]
# The study tests exercise the optimize loop more than the storage: each storage kind (an RDB, a journal) once.
STUDY_TESTS_ON = ("sqlite", "journal")
# Test ids (without the mode) that fail for this project by design; the reason is in docs/storages.md.
DEVIATIONS = {
    "test_heartbeat.py::test_fail_stale_trials": "a trial whose worker promised to beat beats once when it is made, "
    "so a worker that dies before its first beat leaves a trial that becomes stale; Optuna leaves it RUNNING forever",
    "test_heartbeat.py::test_heartbeat_experimental_warnings": "search.open_storage keeps Optuna's 'experimental' "
    "warning about heartbeats to itself: users see one line per trial, not Optuna's warnings",
}
PLUGIN_DIR = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("SEARCH_OPTUNA_SDIST_CACHE", Path.home() / ".cache" / "search-tests"))


@pytest.fixture(scope="module")
def optuna_tests(tmp_path_factory) -> Path:
    """Optuna's tests/ of the installed version, from its source distribution (fetched once, then cached)."""
    wanted = version("optuna")
    sdist = CACHE / f"optuna-{wanted}.tar.gz"
    if not sdist.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        fetched = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"optuna=={wanted}",
                "-d",
                str(CACHE),
            ],
            capture_output=True,
            text=True,
        )
        if fetched.returncode != 0 or not sdist.exists():
            pytest.skip(f"optuna {wanted}'s source distribution could not be fetched from the package index")
    root = tmp_path_factory.mktemp("optuna-suite")
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if "/tests/" in m.name]
        archive.extractall(root, members=members, filter="data")
    return root / f"optuna-{wanted}"


def _run(root: Path, backend: str, impl: str, ids: list[str] | None, url: str) -> dict[str, str]:
    """Run the suites (or just ``ids``) with the plugin; each test id and its outcome (passed/failed/skipped)."""
    report = root / f"report-{backend}-{impl}.xml"
    env = {
        **os.environ,
        "SEARCH_SUITE_BACKEND": backend,
        "SEARCH_SUITE_IMPL": impl,
        "SEARCH_SUITE_URL": url,
        "PYTHONPATH": os.pathsep.join([str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")]),
    }
    suites = SUITES if backend in STUDY_TESTS_ON else SUITES[:2]
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "optuna_suite_plugin",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "--junitxml",
        str(report),
        *(ids or suites),
    ]
    subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[_node_id(case)] = "failed" if failed else "skipped" if case.find("skipped") is not None else "passed"
    return outcomes


def _node_id(case) -> str:
    """pytest's node id of a junit test case: ``tests/x/test_y.py::Class::test_z[mode]``."""
    parts = case.get("classname", "").split(".")
    module = max(i for i, p in enumerate(parts) if p.startswith("test_"))
    return "/".join(parts[: module + 1]) + ".py::" + "::".join([*parts[module + 1 :], case.get("name")])


def _short(node: str) -> str:
    """``test_y.py::test_z`` (the deviations' key): the file's name and the test's, without class or mode."""
    file, *rest = node.split("::")
    return f"{file.rsplit('/', 1)[-1]}::{rest[-1].split('[', 1)[0]}"


def _one_backend(root: Path, backend: str) -> tuple[str, dict[str, str], dict[str, str]]:
    import time

    started = time.monotonic()
    url, drop = new_database(backend, root) if backend in ("postgresql", "mysql") else ("", lambda: None)
    try:
        ours = _run(root, backend, "ours", None, url)
        failed = [t for t, outcome in ours.items() if outcome == "failed"]
        plain = _run(root, backend, "plain", failed, url) if failed else {}
    finally:
        drop()
    print(f"{backend}: {time.monotonic() - started:.0f}s", file=sys.stderr)
    return backend, ours, plain


def test_optuna_s_own_tests_pass_on_every_storage_as_for_plain_optuna(optuna_tests, capsys):
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=len(BACKENDS)
    ) as pool:  # mostly waiting: heartbeat sleeps, round trips
        results = list(pool.map(lambda b: _one_backend(optuna_tests, b), BACKENDS))
    regressions, lines = {}, []
    for backend, ours, plain in results:
        counts = {k: sum(1 for v in ours.values() if v == k) for k in ("passed", "failed", "skipped")}
        theirs = sum(1 for v in plain.values() if v == "failed")
        lines.append(
            f"{backend:<11} {counts['passed']:>4} passed  {counts['failed']:>3} failed "
            f"({theirs} of them fail for plain Optuna too)  {counts['skipped']:>3} skipped"
        )
        for test_id, outcome in ours.items():
            if outcome != "failed" or plain.get(test_id) == "failed":
                continue
            if _short(test_id) in DEVIATIONS:
                continue
            regressions.setdefault(backend, []).append(test_id)
    with capsys.disabled():
        print("\nOptuna's own tests against this project's storages:\n  " + "\n  ".join(lines))
    assert sum(len(o) for _, o, _ in results) > 500  # the suites ran
    assert regressions == {}
