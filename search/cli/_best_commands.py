"""`search best` and `search export`: the pick (under a `--pick` constraint, when given), its figures, and a
multi-objective study's Pareto front; the configuration to retrain, as a file."""

from __future__ import annotations

import json
import sys

from search.study._format import format_params, format_value, rounded
from search.study._inspect import open_existing
from search.study._pick import front_of, pick_line, pick_of
from search.trained._export import best_config, write_config


def add_best_commands(subparsers, parser, storage_help: str) -> None:
    """Their parsers (``parser`` makes one with --storage and --study), beside their handlers."""
    p = parser(
        subparsers,
        "best",
        "show the best trial, warning when a parameter sits at the edge of its range",
        "  search best --study fmnist\n  search best --study fmnist --json\n"
        '  search best --study small --pick "params<=100000"   # the best of the trials that meet it',
        storage_help,
    )
    p.add_argument(
        "--json", action="store_true", help="print one JSON object (a multi-objective study's Pareto front too)"
    )
    _add_pick_flag(p)
    p.set_defaults(handler=cmd_best)

    p = parser(
        subparsers,
        "export",
        "write the best configuration to a YAML or JSON file",
        "  search export --study fmnist --output best.yaml\n  search train --config best.yaml\n"
        "  search export --study fmnist --output best.yaml --model searched.pt   # the searched network itself\n"
        '  search export --study small --pick "latency<=2" --output small.yaml',
        storage_help,
    )
    p.add_argument("--output", required=True, help="FILE.yaml, FILE.yml or FILE.json")
    p.add_argument(
        "--model",
        metavar="FILE.pt",
        help="also write the pick's own network, as its search trained it (kept with `search run --keep`), "
        "scored on the test rows: a model file as `search train` saves, with no retraining",
    )
    p.add_argument("--artifacts", metavar="DIR", help="where the run kept the weights (default: as `search run`)")
    _add_pick_flag(p)
    p.set_defaults(handler=cmd_export)


def _add_pick_flag(p) -> None:
    p.add_argument(
        "--pick",
        metavar="COST<=N",
        help="choose among the trials that meet this constraint on a cost (params, latency in µs a row), "
        'e.g. "params<=100000"; a confirmation made under the same constraint decides, else the search value',
    )


def cmd_best(args, argv) -> int:
    _, _, study = open_existing(args.storage, args.study)
    best = pick_of(study, args.pick)
    front = front_of(study)
    if args.json:
        many = {"objectives": front[0], "pareto_front": front[1]} if front else {}
        print(json.dumps({**best.to_dict(), **many}, default=str))
        return 0
    print(pick_line(best))
    stick = best.yardstick
    if stick and not stick.error:
        print(
            f"  yardstick: {stick.name} {format_value(stick.mean, best.metric)} on the same resamples "
            f"(the pick {'leads' if stick.lead > 0 else 'trails'} it by {abs(stick.lead):.4g})"
        )
    print(f"  params: {format_params(best.params)}")
    attrs = best.user_attrs
    for key in ("epochs_run", "seconds", "samples_per_second", "val_loss", "n_params", "device", "seed"):
        if key in attrs:
            print(f"  {key}: {_human(attrs[key])}")
    if front:
        _print_front(*front, best)
    for warning in best.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _print_front(objectives: list[str], rows: list[dict], best) -> None:
    """A multi-objective study's Pareto front, best metric first; the pick marked."""
    trials = "1 trial" if len(rows) == 1 else f"{len(rows)} trials"
    print(f"  Pareto front ({trials} that no other trial beats on all of {', '.join(objectives)}):")
    for row in rows:
        figures = "  ".join(
            f"{name} {format_value(v, best.metric) if name == objectives[0] else _human(_cost(v))}"
            for name, v in row["values"].items()
        )
        mark = "  <- the pick" if row["number"] == best.number else ""
        print(f"    trial {row['number']:>3}  {figures}{mark}")


def _cost(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 3)


def cmd_export(args, argv) -> int:
    url, _, study = open_existing(args.storage, args.study)
    config = best_config(study, url, args.pick)
    if args.model:  # first: a pick whose weights are gone writes no file at all
        from search.trained._searched import export_searched_model

        figures = export_searched_model(study, url, config["source"]["trial"], args.model, args.artifacts)
    path = write_config(config, args.output)
    print(
        f"wrote the best configuration of {study.study_name!r} to {path}; retrain it with: search train --config {path}"
    )
    if args.model:
        record = json.loads(figures.read_text())
        print(
            f"wrote trial {config['source']['trial']}'s network as the search trained it to {args.model} "
            f"(test {record['metric']} {format_value(record['test_value'], record['metric'])})"
        )
    return 0


def _human(value) -> str:
    value = rounded(value)
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
