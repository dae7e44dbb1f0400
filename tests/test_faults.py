"""A storage that fills up mid-study: one line, a non-zero exit within seconds, the study intact and continued once
there is room (a real tmpfs of the size the study needs, shrunk under it; root only)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess

import optuna
import pytest
import torch


@contextlib.contextmanager
def small_disk(path):
    path.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.decode().strip()})")
    try:
        yield lambda size_k: subprocess.run(["mount", "-o", f"remount,size={size_k}k", str(path)], check=True)
    finally:
        subprocess.run(["umount", "-l", str(path)])


def _used_k(path) -> int:
    return shutil.disk_usage(path).used // 1024


def _states(url: str, study: str) -> list[str]:
    from search.storages import open_storage

    return [t.state.name for t in optuna.load_study(study_name=study, storage=open_storage(url, create=False)).trials]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_full_disk_stops_the_run_in_one_line_and_the_study_goes_on_once_there_is_room(cli, workdir, kind):
    disk = workdir / "disk"
    url = "sqlite:///disk/s.db" if kind == "sqlite" else "journal:///disk/s.log"
    # --keep 0: the best trials' weights (2.7 MB each here) would fill this 4 MB disk before the database does.
    run = [
        "run",
        "--study",
        "s",
        "--dataset",
        "synthetic",
        "--max-epochs",
        "1",
        "--jobs",
        "1",
        "--storage",
        url,
        "--keep",
        "0",
    ]
    with small_disk(disk) as resize:
        assert cli(*run, "--n-trials", "2")[0] == 0
        resize(_used_k(disk) + 12)  # a few writes' room left
        code, out, err = cli(*run, "--n-trials", "300")
        assert code == 1, err
        assert err.strip().count("\n") == 0 and "no space left on device" in err and "Traceback" not in err, err
        before = _states(url, "s")
        assert before.count("COMPLETE") >= 2 and len(before) < 302
        resize(4096)
        code, out, err = cli(*run, "--n-trials", "2")
        assert code == 0, err
        after = _states(url, "s")
        assert after.count("COMPLETE") == before.count("COMPLETE") + 2


@pytest.mark.slow
def test_weights_and_checkpoints_that_no_longer_fit_are_one_line_and_the_study_goes_on(cli, workdir):
    """The artifact store beside the database fills up: no checkpoint or weights file is half-written, the run
    says so once, and its trials complete."""
    disk = workdir / "disk"
    url = "sqlite:///disk/s.db"
    run = ["run", "--study", "s", "--dataset", "synthetic", "--max-epochs", "3", "--jobs", "1", "--storage", url]
    with small_disk(disk):
        code, out, err = cli(*run, "--n-trials", "4", "--checkpoint-every", "1", "--keep", "5")
        assert code == 0, err
        lines = [line for line in err.splitlines() if "artifact store" in line]
        assert len(lines) == 1 and "No space left on device); the study goes on" in lines[0], err
        assert _states(url, "s").count("COMPLETE") + _states(url, "s").count("PRUNED") == 4
        for file in (disk / "s-artifacts").iterdir():  # whole files only: each loads
            torch.load(file, weights_only=True)
