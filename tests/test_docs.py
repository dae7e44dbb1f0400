"""The documentation: the guide builds strictly, and its command examples run as written.

A fenced ``sh`` block in README.md or docs/*.md is run, line by line, in a fresh directory per
page (the page's blocks in order, so a later block may use what an earlier one made); a
``python`` block is run as a script there. A block preceded by ``<!-- not run: REASON -->``
(it needs a server or the internet) is left out. The commands run offline, on small data.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!--[^\n]*-->\n)?```(sh|python)\n(.*?)```", re.DOTALL)


def blocks(page: Path) -> list[tuple[str, str]]:
    """The page's runnable blocks: (language, text)."""
    out = []
    for marker, language, text in BLOCK.findall(page.read_text()):
        if marker.startswith("<!-- not run"):
            continue
        out.append((language, text))
    return out


def run_page(page: Path, workdir: Path) -> None:
    """Every runnable block of ``page`` in ``workdir``, in order; the `search` and `python` of this environment.

    README.md runs as a user runs it, with the default workers (one process per core, so its Python
    example is a plain script whose workers are spawned); the guide's pages with one each, to be quick.
    """
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(workdir),
        "SEARCH_JOBS": "1",
        "SEARCH_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("SEARCH_STORAGE", None)
    if page.name == "README.md":
        env.pop("SEARCH_JOBS"), env.pop("SEARCH_THREADS")
    for number, (language, text) in enumerate(blocks(page)):
        if language == "python":
            name = (
                text.splitlines()[0].removeprefix("# ").strip()
                if text.startswith("# ") and text.splitlines()[0].endswith(".py")
                else f"block{number}.py"
            )
            (workdir / name).write_text(text)
            if name != f"block{number}.py":
                continue  # a module the next blocks import
            commands = [[sys.executable, name]]
        else:
            commands = [["bash", "-c", line] for line in text.splitlines() if line.strip() and not line.startswith("#")]
        for command in commands:
            result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, (
                f"{page.name}: {' '.join(command)}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
            )
            assert "Traceback" not in result.stderr, f"{page.name}: {' '.join(command)}\n{result.stderr[-3000:]}"


def test_the_guide_builds_strictly(tmp_path):
    """A broken link, a missing page or a docstring that does not parse fails the build."""
    if shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("mkdocs is not installed (it is in the test extra: pip install -e '.[test]')")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    cli = (tmp_path / "site" / "cli" / "index.html").read_text()
    assert "search run" in cli and "--confirm" in cli and "--threads" in cli  # generated from the parsers


def test_the_readme_stays_short_with_its_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) < 150
    fresh = [line for line in text.splitlines() if line.startswith("python3 -m venv .venv")]
    assert len(fresh) == 2 and " -m pytest" in fresh[1] and "search run" in fresh[0]


def test_every_page_is_in_the_guide():
    listed = (ROOT / "mkdocs.yml").read_text()
    assert [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.name not in listed] == []


@pytest.mark.slow
def test_the_examples_run_as_written(tmp_path):
    """Every page's examples, two pages at a time (they share nothing but the machine)."""
    import concurrent.futures

    pages = [p for p in PAGES if blocks(p)]
    assert {p.name for p in pages} >= {"README.md", "your-data.md", "your-model.md", "tasks.md", "confirmation.md"}

    def run(page: Path) -> str | None:
        workdir = tmp_path / page.stem
        workdir.mkdir()
        try:
            run_page(page, workdir)
        except AssertionError as exc:
            return str(exc)
        return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        failures = [f for f in pool.map(run, pages) if f]
    assert failures == [], "\n\n".join(failures)
