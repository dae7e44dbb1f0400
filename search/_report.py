"""One self-contained HTML page about a study: history, learning curves, importances, and more."""

from __future__ import annotations

import html
from pathlib import Path

import optuna
from optuna.trial import TrialState

from search._errors import SearchError
from search._files import write_text
from search._inspect import best_summary

_PLOTS = (
    ("Optimization history", "plot_optimization_history", "Each trial's validation accuracy, and the best so far."),
    ("Learning curves", "plot_intermediate_values", "Validation accuracy after every epoch; pruned trials stop early."),
    ("Parameter importances", "plot_param_importances", "How much each parameter explains the variation in accuracy (fANOVA)."),
    ("Parallel coordinates", "plot_parallel_coordinate", "Each completed trial as a line across its parameters."),
    ("Slices", "plot_slice", "Accuracy against each parameter."),
)


def write_report(study: optuna.Study, path: str | Path) -> Path:
    import optuna.visualization as vis

    trials = study.get_trials(deepcopy=False)
    if not any(t.state == TrialState.COMPLETE for t in trials):
        raise SearchError(f"study {study.study_name!r} has no completed trial to report on")
    best = best_summary(study)
    sections, first = [], True
    for title, name, caption in _PLOTS:
        try:
            figure = getattr(vis, name)(study)
            # The first figure carries plotly.js inline; the page works offline, alone.
            body = figure.to_html(full_html=False, include_plotlyjs=True if first else False)
            first = False
        except (ValueError, RuntimeError) as exc:  # too few trials for this plot
            body = f"<p class=note>Not enough trials for this plot yet: {html.escape(str(exc))}</p>"
        sections.append(f"<section><h2>{title}</h2><p>{caption}</p>{body}</section>")
    counts = {s.name: sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in best["warnings"])
    params = ", ".join(f"{k}={v}" for k, v in best["params"].items())
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Study {html.escape(study.study_name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}} .note{{color:#a60}}</style></head>
<body><h1>Study {html.escape(study.study_name)}</h1>
<p>{len(trials)} trials: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed.</p>
<p>Best: trial {best['number']}, validation accuracy {best['value']:.4f}; {html.escape(params)}</p>
{f'<ul class=note>{warnings}</ul>' if warnings else ''}
{''.join(sections)}
</body></html>
"""
    return write_text(path, page)
