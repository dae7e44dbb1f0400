"""docs/clusters.md as written: the SLURM job array submitted to a real single-node SLURM where it is installed,
and the Kubernetes manifest checked against Kubernetes' schema (no cluster runs here)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "clusters.md"


def _block(marker: str, language: str) -> str:
    found = re.search(rf"<!-- {marker}:[^\n]*-->\n```{language}\n(.*?)```", PAGE.read_text(), re.DOTALL)
    assert found, f"docs/clusters.md has no {marker} block"
    return found.group(1)


def _parses_as_a_run(args: list[str]) -> None:
    """``args`` (from `search run` on) are a command `search run`'s own parser takes."""
    from search.cli._cli import build_parser

    assert args[:2] == ["search", "run"], args
    parsed = build_parser().parse_args(args[1:])
    assert parsed.total_trials and parsed.study


def test_the_kubernetes_manifest_is_valid_and_runs_search():
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed (the test extra)")
    import yaml

    documents = [d for d in yaml.safe_load_all(_block("kubernetes", "yaml")) if d]
    for document in documents:
        kv.validate(document, kv.latest_version(), strict=True)  # raises on any error, unknown fields included
    kinds = {d["kind"]: d for d in documents}
    (container,) = kinds["Job"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    secret = env["SEARCH_STORAGE"]["valueFrom"]["secretKeyRef"]
    assert secret["name"] == kinds["Secret"]["metadata"]["name"] and secret["key"] in kinds["Secret"]["stringData"]
    assert env["SEARCH_JOBS"]["valueFrom"]["resourceFieldRef"]["resource"] == "limits.cpu"
    assert kinds["Job"]["spec"]["completionMode"] == "Indexed"
    _parses_as_a_run(container["args"])


def test_a_manifest_with_a_typo_is_refused_by_the_same_check():
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed (the test extra)")
    import yaml

    job = [d for d in yaml.safe_load_all(_block("kubernetes", "yaml")) if d and d["kind"] == "Job"][0]
    job["spec"]["completionsMode"] = job["spec"].pop("completionMode")
    with pytest.raises(kv.ValidationError):
        kv.validate(job, kv.latest_version(), strict=True)


def test_the_slurm_script_is_shell_and_runs_search(tmp_path):
    script = tmp_path / "search-array.sh"
    script.write_text(_block("slurm", "bash"))
    subprocess.run(["bash", "-n", str(script)], check=True)
    line = " ".join(part.strip().rstrip("\\") for part in _block("slurm", "bash").split("exec ", 1)[1].splitlines())
    words = shlex.split(line.replace('"$@"', ""))
    _parses_as_a_run([re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", w) for w in words])


# --- a real single-node SLURM (Debian's slurm-wlm), where it is installed ---

SLURM = ("slurmctld", "slurmd", "sbatch", "squeue", "munged")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Slurm:
    """slurmctld and slurmd on this host, with their own munge, config and state under ``home``."""

    def __init__(self, home: Path) -> None:
        self.home, self.procs = home, []
        node = socket.gethostname().split(".")[0]
        for folder in ("state", "spool", "munge", "log"):
            (home / folder).mkdir(mode=0o700, parents=True)
        key = home / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.munge_socket = home / "munge" / "socket"
        subprocess.run(
            ["munged", "--force", f"--key-file={key}", f"--socket={self.munge_socket}",
             f"--pid-file={home / 'munge' / 'pid'}", f"--log-file={home / 'log' / 'munge'}",
             f"--seed-file={home / 'munge' / 'seed'}"],
            check=True, timeout=30,
        )  # fmt: skip
        self.conf = home / "slurm.conf"
        self.conf.write_text(
            f"ClusterName=t{uuid.uuid4().hex[:6]}\nSlurmctldHost={node}(127.0.0.1)\nSlurmUser=root\n"
            f"SlurmctldPort={_free_port()}\nSlurmdPort={_free_port()}\n"
            f"AuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket={self.munge_socket}\n"
            f"StateSaveLocation={home / 'state'}\nSlurmdSpoolDir={home / 'spool'}\n"
            f"SlurmctldPidFile={home / 'ctld.pid'}\nSlurmdPidFile={home / 'd.pid'}\n"
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSwitchType=switch/none\n"
            "MpiDefault=none\nReturnToService=2\nSchedulerType=sched/backfill\nSelectType=select/cons_tres\n"
            "SelectTypeParameters=CR_Core\nJobAcctGatherType=jobacct_gather/none\n"
            f"SlurmctldLogFile={home / 'log' / 'ctld'}\nSlurmdLogFile={home / 'log' / 'd'}\n"
            f"NodeName={node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN\n"
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n"
        )
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        for daemon in ("slurmctld", "slurmd"):
            self.procs.append(
                subprocess.Popen([daemon, "-D", "-f", str(self.conf)], env=self.env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
            )  # fmt: skip
        self._wait(lambda: "idle" in self.run("sinfo", "-h", "-o", "%t").stdout, "the node to be idle")

    def run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), env={**self.env, **kwargs.pop("env", {})}, capture_output=True, text=True,
                              timeout=60, **kwargs)  # fmt: skip

    def _wait(self, predicate, what: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            ended = [p for p in self.procs if p.poll() is not None]
            if ended:
                raise AssertionError(f"a SLURM daemon exited: {ended[0].communicate()[1][-2000:]}")
            time.sleep(0.5)
        logs = "\n".join(p.read_text()[-1500:] for p in (self.home / "log").iterdir() if p.is_file())
        raise AssertionError(f"timed out waiting for {what}:\n{logs}")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        pid = self.home / "munge" / "pid"
        if pid.exists():
            subprocess.run(["kill", pid.read_text().strip()], check=False)


@pytest.mark.slow
def test_the_slurm_array_ends_with_exactly_the_asked_trials(tmp_path, own_storage):
    missing = [tool for tool in SLURM if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"SLURM is not installed here ({', '.join(missing)}; Debian's slurm-wlm)")
    import sys

    slurm = Slurm(tmp_path / "slurm")
    try:
        script = tmp_path / "search-array.sh"
        script.write_text(_block("slurm", "bash"))
        url = own_storage("postgresql")
        work = tmp_path / "work"
        work.mkdir()
        bin_dir = str(Path(sys.executable).parent)
        env = {"SEARCH_STORAGE": url, "STUDY": "arr", "TOTAL": "12", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        submitted = slurm.run(
            "sbatch", "--parsable", "--cpus-per-task=1", f"--chdir={work}", str(script),
            "--dataset", "synthetic", "--limit-train", "64", "--max-epochs", "1", env=env,
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        job = submitted.stdout.strip().split(";")[0]
        slurm._wait(lambda: slurm.run("squeue", "-h", "-j", job).stdout.strip() == "", "the array to finish", 600)
        outputs = sorted(work.glob("search-*.out"))
        assert len(outputs) == 4, [p.name for p in work.iterdir()]  # the four tasks of the array ran
        from search import open_storage

        trials = optuna.load_study(study_name="arr", storage=open_storage(url)).trials
        assert len(trials) == 12 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials), [
            (t.number, t.state) for t in trials
        ] + [p.read_text()[-800:] for p in outputs]
    finally:
        slurm.stop()
