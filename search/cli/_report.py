"""One self-contained HTML page about a study: provenance, plots, and every trial.

It works offline (plotly.js inline) and fits a 1,280 px wide window: each figure takes the
page's width, never a fixed one of its own.
"""

from __future__ import annotations

import html
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from search._errors import SearchError
from search._files import write_text
from search.study._costs import score
from search.study._format import format_confirmation, format_params, label, rounded
from search.study._inspect import trial_rows
from search.study._pick import Pick, pick_line, pick_of
from search.study._record import RUN_ATTR, STUDY_ATTR, confirmed, made_metric

_PLOTS = (
    ("Optimization history", "plot_optimization_history", "Each trial's validation figure, and the best so far."),
    (
        "Parameter importances",
        "plot_param_importances",
        "How much each parameter explains the variation in the {metric} (fANOVA).",
    ),
    ("Parallel coordinates", "plot_parallel_coordinate", "Each completed trial as a line across its parameters."),
    ("Slices", "plot_slice", "The {metric} against each parameter."),
)
_CURVES = (
    "Learning curves",
    "The validation figure after every epoch. Complete trials are solid; pruned ones, "
    "which the pruner stopped early, are dashed and grey.",
)
_FRONT = (
    "Each completed trial by its objectives; the trials on the front are those no other trial beats on all of "
    "them (a study with several objectives reports no epochs, so it has no learning curves)."
)
# What a plot says when a study cannot feed it yet (Optuna's own words for these cases).
_TOO_FEW = ("must contain at least", "Cannot evaluate parameter importances", "need at least", "no complete")


def write_report(study: optuna.Study, path: str | Path, storage: str) -> Path:
    """Write the report on ``study``; ``storage`` is its URL, passwords already hidden."""
    trials = study.get_trials(deepcopy=False)
    if not any(t.state == TrialState.COMPLETE for t in trials):
        raise SearchError(f"study {study.study_name!r} has no completed trial to report on")
    best = pick_of(study)
    sections, first = [], True
    for title, caption, figure in _figures(study):
        if isinstance(figure, str):
            body = f"<p class=note>{html.escape(figure)}</p>"
        else:
            figure.update_layout(width=None, autosize=True)  # the page's width, never a fixed one
            body = figure.to_html(
                full_html=False, include_plotlyjs=first, default_width="100%", config={"responsive": True}
            )
            first = False
        sections.append(f"<section><h2>{title}</h2><p>{caption}</p>{body}</section>")
    counts = {
        s.name: sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    }
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in best.warnings)
    rows, _, columns = trial_rows(study)
    table = _html_table(rows, columns)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Study {html.escape(study.study_name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}} .note{{color:#a60}}
table{{border-collapse:collapse;font-size:0.85em}} td,th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}}
.provenance td,.provenance th{{text-align:left}} .plotly-graph-div{{max-width:100%}}</style></head>
<body><h1>Study {html.escape(study.study_name)}</h1>
{_provenance(study, trials, storage)}
<p>{len(trials)} trials: {counts["COMPLETE"]} complete, {counts["PRUNED"]} pruned, {counts["FAIL"]} failed.</p>
<p>{_picked(best)}; {html.escape(format_params(best.params))}</p>
{_confirmation(study)}
{f"<ul class=note>{warnings}</ul>" if warnings else ""}
{"".join(sections)}
<section><h2>Trials</h2>{table}</section>
</body></html>
"""
    return write_text(path, page)


def _figures(study: optuna.Study):
    """(title, caption, plotly figure or a note saying why there is none), in page order; the captions
    name the study's own metric."""
    import optuna.visualization as vis

    metric = label(made_metric(study.user_attrs.get(STUDY_ATTR) or {}).name)
    # A multi-objective study's plots show its metric (its first objective); its front has a plot of its own.
    many = {"target": score, "target_name": metric} if len(study.directions) > 1 else {}
    title, name, caption = _PLOTS[0]
    yield title, caption, _plot(getattr(vis, name), study, **many)
    if many:
        names = [m.label for m in optuna_labels(study)]
        yield "Pareto front", _FRONT, _plot(vis.plot_pareto_front, study, target_names=names)
    else:
        yield _CURVES[0], _CURVES[1], _learning_curves(study)
    for title, name, caption in _PLOTS[1:]:
        yield title, caption.format(metric=metric), _plot(getattr(vis, name), study, **many)


def optuna_labels(study: optuna.Study):
    """The study's objectives, as `objectives.Metric`: its metric, then each cost."""
    from objectives import COSTS
    from search.study._costs import made_costs

    made = study.user_attrs.get(STUDY_ATTR) or {}
    return [made_metric(made), *(COSTS[c] for c in made_costs(made))]


def _plot(make, study: optuna.Study, **options):
    try:
        with warnings.catch_warnings():  # Optuna's notes on small samples: the page says enough
            warnings.simplefilter("ignore")
            return make(study, **options)
    except (ValueError, RuntimeError) as exc:
        if any(phrase in str(exc) for phrase in _TOO_FEW):
            return f"Not enough trials for this plot yet: {exc}"
        return f"This plot could not be drawn: {type(exc).__name__}: {exc}"


def _learning_curves(study: optuna.Study):
    """Every trial's figure after each epoch, pruned ones told apart, with a legend."""
    import plotly.graph_objects as go

    figure = go.Figure()
    shown: set[str] = set()
    styles = {
        "COMPLETE": dict(color="#1f77b4", dash="solid"),
        "PRUNED": dict(color="#999999", dash="dash"),
        "FAIL": dict(color="#d62728", dash="dot"),
    }
    for trial in study.get_trials(deepcopy=False):
        if not trial.intermediate_values or trial.state.name not in styles:
            continue
        steps = sorted(trial.intermediate_values)
        state = trial.state.name
        figure.add_trace(
            go.Scatter(
                x=steps,
                y=[trial.intermediate_values[s] for s in steps],
                mode="lines+markers",
                name=state.lower(),
                legendgroup=state,
                showlegend=state not in shown,
                line=dict(width=1.5, **styles[state]),
                marker=dict(size=4),
                hovertemplate=f"trial {trial.number} ({state.lower()})<br>epoch %{{x}}: %{{y:.4f}}<extra></extra>",
            )
        )
        shown.add(state)
    if not figure.data:
        return "No trial has reported an epoch yet."
    figure.update_layout(
        xaxis=dict(
            title="epoch", tick0=1, dtick=1 if len(figure.data) and max(max(t.x) for t in figure.data) <= 20 else None
        ),
        yaxis_title=label(made_metric(study.user_attrs.get(STUDY_ATTR) or {}).name),
        legend_title_text="trial state",
        template="plotly_white",
        height=450,
    )
    return figure


def _provenance(study: optuna.Study, trials, storage: str) -> str:
    made = study.user_attrs.get(STUDY_ATTR) or {}
    runs = [t.user_attrs.get(RUN_ATTR) or {} for t in trials]
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    facts: list[tuple[str, Any]] = [
        ("data set", made.get("dataset")),
        ("validation fraction", made.get("validation_fraction")),
        ("seed", made.get("seed")),
        ("training samples", made.get("limit_train") or "all"),
        ("sampler", ", ".join(sorted({r["sampler"] for r in runs if r.get("sampler")})) or "not recorded"),
        ("pruner", ", ".join(sorted({r["pruner"] for r in runs if r.get("pruner")})) or "not recorded"),
        ("hosts", ", ".join(sorted({r["host"] for r in runs if r.get("host")})) or "not recorded"),
        ("first trial started", min(starts).isoformat(sep=" ", timespec="seconds") if starts else None),
        ("last trial ended", max(ends).isoformat(sep=" ", timespec="seconds") if ends else None),
        ("storage", storage),
        ("objective", f"{label(made_metric(made).name)}, {'maximised' if made_metric(made).maximize else 'minimised'}"),
        ("model", made.get("model") or "objectives.models:mlp"),
    ]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
    return f"<table class=provenance>{rows}</table>"


def _picked(best: Pick) -> str:
    line = pick_line(best)
    return html.escape(line.split(": ", 1)[1][0].upper() + line.split(": ", 1)[1][1:])


def _confirmation(study: optuna.Study) -> str:
    summary = confirmed(study.user_attrs)
    if not summary:
        return ""
    metric = summary.metric
    rows = [
        {
            "trial": c.trial,
            "race mean": c.mean,
            "sd": c.sd,
            "n": c.n,
            "search value": c.search_value,
            "baseline": "yes" if c.baseline else "",
            "dropped after": c.dropped_after or ("yes" if c.dropped else ""),
            "params": format_params(c.params),
        }
        for c in summary.ranking
    ]
    lines = "".join(
        f"<li>{html.escape(line.strip())}</li>"
        for line in format_confirmation(summary)
        if line.strip().startswith(("the pick", "quote", "yardstick", "("))
    )
    return (
        f"<section><h2>Confirmation</h2><p>The leaders of the search and its baseline, raced on resamples the search never "
        f"validated on ({html.escape(label(metric))}); then the pick alone on fresh resamples: the figure to quote.</p>"
        f"{_html_table(rows, list(rows[0]))}<ul>{lines}</ul></section>"
    )


def _html_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape('-' if row.get(c) is None else str(rounded(row[c])))}</td>" for c in columns)
        + "</tr>"
        for row in rows
    )
    return f"<table class=trials><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
