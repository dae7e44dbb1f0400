"""The report as a person sees it: rendered by headless Chromium in a 1,280 px wide window."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory, fashion_root):
    from search import main

    where = tmp_path_factory.mktemp("report")
    space = where / "space.yaml"
    # Many sampled parameters: the slices plot is widest then (Optuna makes it 300 px per parameter).
    space.write_text(
        "hidden_units: {choices: [16, 32]}\nweight_decay: {low: 0.0, high: 0.001}\nepochs: {low: 1, high: 3}\n"
    )
    assert (
        main(
            [
                "run",
                "--study",
                "r",
                "--storage",
                f"sqlite:///{where}/r.db",
                "--data-dir",
                str(fashion_root),
                "--space",
                str(space),
                "--n-trials",
                "12",
                "--limit-train",
                "200",
                "--sampler",
                "random",
                "--confirm",
                "3,2",
            ]
        )
        == 0
    )
    assert (
        main(["report", "--study", "r", "--storage", f"sqlite:///{where}/r.db", "--output", str(where / "r.html")]) == 0
    )
    return where / "r.html"


def test_every_plot_fits_a_1280_px_window(report):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is needed (apt-get install chromium; .ci/run installs it)"
    dom = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            "--window-size=1280,900",
            "--virtual-time-budget=15000",
            "--dump-dom",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    widths = [int(w) for w in re.findall(r'<svg class="main-svg"[^>]*? width="(\d+)"', dom)]
    assert len(widths) >= 5  # every figure was drawn
    assert max(widths) <= 1280 - 16, widths  # none is cut off at the window's edge
