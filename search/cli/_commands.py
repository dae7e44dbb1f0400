"""The study-management commands: studies, trials, space, dashboard, report, delete, storage-proxy (best and export in
`_best_commands`, train, split and predict in `_model_commands`)."""

from __future__ import annotations

import argparse
import json
import signal
import sys

from search._errors import SearchError
from search._files import write_text
from search.cli._best_commands import add_best_commands
from search.cli._model_commands import add_model_commands
from search.confirmation._config import CONFIRM_SUFFIX
from search.storages import redact
from search.study._format import rounded
from search.study._inspect import TABLE_COLUMNS, format_table, list_studies, open_existing, trial_rows

# Heavy modules (torch, plotly, optuna-dashboard) are imported inside the commands that
# use them: `studies`, `trials`, `best`, `export` and `delete` start in well under a second.


def _parser(subparsers, name: str, help: str, examples: str, storage_help: str, study: bool = True):
    p = subparsers.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n" + examples,
    )
    p.add_argument("--storage", help=storage_help)
    if study:
        p.add_argument("--study", required=True, help="study name")
    return p


def add_all(subparsers, storage_help: str) -> None:
    p = _parser(
        subparsers,
        "studies",
        "list every study in the storage",
        "  search studies\n  search studies --json --storage postgresql://me@db/optuna",
        storage_help,
        study=False,
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_studies)

    p = _parser(
        subparsers,
        "trials",
        "show a study's trials as a table, CSV or JSON",
        "  search trials --study fmnist\n  search trials --study fmnist --columns number,value,lr,val_loss\n  search trials --study fmnist --format csv --output trials.csv",
        storage_help,
    )
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="(default: table)")
    p.add_argument(
        "--columns",
        help=f"comma-separated columns to show (table default: {','.join(TABLE_COLUMNS)} and the sampled parameters; CSV and JSON: all)",
    )
    p.add_argument("--output", help="write to this file instead of the terminal")
    p.set_defaults(handler=cmd_trials)

    add_best_commands(subparsers, _parser, storage_help)
    add_model_commands(subparsers)

    p = _parser(
        subparsers,
        "space",
        "print a search space as YAML to edit and pass back with --space",
        "  search space > space.yaml              # the default space\n  search space --max-epochs 5\n  search space --study fmnist            # the space a study was made with\n  search run --study mine --space space.yaml",
        storage_help,
        study=False,
    )
    p.add_argument("--study", help="print the space this study was made with")
    p.add_argument("--space", help="a space file to complete with the defaults")
    p.add_argument("--max-epochs", type=int, help="epochs range 1..N")
    p.set_defaults(handler=cmd_space)

    p = _parser(
        subparsers,
        "dashboard",
        "serve optuna-dashboard on the storage",
        "  search dashboard\n  search dashboard --read-only --port 8081",
        storage_help,
        study=False,
    )
    p.add_argument("--host", default="127.0.0.1", help="(default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_port, default=8080, help="(default: 8080)")
    p.add_argument("--read-only", action="store_true", help="refuse every change from the page (safe for sharing)")
    p.add_argument(
        "--artifacts",
        metavar="DIR",
        help="the artifact store the trials' kept weights are in, shown on each trial's page (default: as `search run`)",
    )
    p.set_defaults(handler=cmd_dashboard)

    p = _parser(
        subparsers,
        "report",
        "write one self-contained HTML page about a study",
        "  search report --study fmnist --output report.html",
        storage_help,
    )
    p.add_argument("--output", required=True, help="HTML file")
    p.set_defaults(handler=cmd_report)

    p = _parser(
        subparsers,
        "delete",
        "delete a study and its trials (asks first)",
        "  search delete --study old\n  search delete --study old --yes",
        storage_help,
    )
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument(
        "--artifacts",
        metavar="DIR",
        help="the artifact store its trials' kept weights and checkpoints are in, removed too (default: as `search run`)",
    )
    p.set_defaults(handler=cmd_delete)

    p = _parser(
        subparsers,
        "storage-proxy",
        "serve the storage to many workers through Optuna's gRPC storage proxy (they use --storage grpc://HOST:PORT)",
        "  search storage-proxy --storage postgresql://me@db/optuna --port 13000\n"
        "  search run --study big --storage grpc://proxy-host:13000   # on each worker",
        storage_help,
        study=False,
    )
    p.add_argument("--host", default="0.0.0.0", help="(default: 0.0.0.0, every address of this machine)")
    p.add_argument("--port", type=_port, default=13000, help="(default: 13000; 0: any free port)")
    p.add_argument(
        "--threads",
        type=_positive,
        default=32,
        help="calls served at once; the database's connections are its pool's, at most 15 (default: 32)",
    )
    p.set_defaults(handler=cmd_storage_proxy)


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port is {port}, but must be 0..65535")
    return port


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"threads is {number}, but must be >= 1")
    return number


def cmd_storage_proxy(args, argv) -> int:
    from search.storages import open_storage, resolve_storage_url, storage_kind
    from search.storages._grpc import PROXY_HEARTBEAT, StorageProxy

    url = resolve_storage_url(args.storage)
    if storage_kind(url) not in ("sqlite", "postgresql", "mysql"):
        raise SearchError(
            f"`storage` {redact(url)}: a proxy serves a database (PostgreSQL, MySQL or SQLite); "
            "Optuna's proxy does not serve a journal"
        )
    proxy = StorageProxy(open_storage(url, heartbeat=PROXY_HEARTBEAT), args.host, args.port, args.threads)
    try:
        # SIGTERM (a scheduler stopping the job) ends it as Ctrl-C does: the calls in flight finish first.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        proxy.start()
        print(f"storage proxy for {redact(url)} at grpc://{args.host}:{proxy.port} ; Ctrl-C stops it", flush=True)
        proxy.server.wait_for_termination()
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()
    return 0


def cmd_studies(args, argv) -> int:
    rows = list_studies(args.storage)
    if args.json:
        print(json.dumps({"studies": rows}, default=str))
    elif not rows:
        print("no studies yet; start one with: search run --study NAME")
    else:
        shown = [{k: rounded(v) for k, v in row.items()} for row in rows]
        print(format_table(shown, list(rows[0])), end="")
    return 0


def cmd_trials(args, argv) -> int:
    _, _, study = open_existing(args.storage, args.study)
    rows, every, fits = trial_rows(study)  # the trials are read once; the format only chooses columns
    columns = fits if args.format == "table" else every
    if args.columns:
        columns = [c.strip() for c in args.columns.split(",") if c.strip()]
        unknown = [c for c in columns if c not in every]
        if unknown:
            raise SearchError(f"--columns: no column {unknown[0]!r} (columns: {', '.join(every)})")
    if args.format == "csv":
        text = _csv(rows, columns)
    elif args.format == "json":
        text = json.dumps([{c: row.get(c) for c in columns} for row in rows], indent=1, default=str) + "\n"
    else:
        text = format_table([{c: rounded(row.get(c)) for c in columns} for row in rows], columns)
    if args.output:
        write_text(args.output, text)
        print(f"wrote {len(rows)} trials to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _csv(rows: list[dict], columns: list[str]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        # CSV cannot nest: a mapping (the trial's config) is one JSON cell.
        writer.writerow(
            [
                "" if row.get(c) is None else json.dumps(row[c]) if isinstance(row.get(c), (dict, list)) else row[c]
                for c in columns
            ]
        )
    return out.getvalue()


def cmd_space(args, argv) -> int:
    import yaml

    from objectives import SearchSpace
    from search.study._pick import stored_space

    if args.study and (args.space or args.max_epochs):
        raise SearchError("--study prints a study's own space; give --space and --max-epochs without it")
    if args.study:
        _, _, study = open_existing(args.storage, args.study)
        space = stored_space(study)
        if space is None:
            raise SearchError(f"study {args.study!r} was not made by `search run`; it has no recorded space")
    elif args.space:
        space = SearchSpace.from_file(args.space, max_epochs=args.max_epochs)
    else:
        space = SearchSpace.from_mapping({}, max_epochs=args.max_epochs)
    body = yaml.safe_dump(space.to_dict(), sort_keys=False, default_flow_style=None)
    print(
        "# A search space for `search run --space FILE`: a range, {choices: [...]}, or a value to pin.\n" + body, end=""
    )
    return 0


def cmd_dashboard(args, argv) -> int:
    from search.cli._dashboard import make_dashboard

    server = make_dashboard(args.storage, args.host, args.port, args.read_only, args.artifacts)
    mode = " (read-only)" if args.read_only else ""
    # A background job of a non-interactive shell starts with SIGINT ignored: the banner's promise must still hold,
    # from the moment it is printed (a Ctrl-C right after it was lost on a loaded machine).
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print(
            f"optuna-dashboard{mode} at http://{args.host}:{server.server_port}/dashboard/ ; Ctrl-C stops it",
            flush=True,
        )
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_report(args, argv) -> int:
    from search.cli._report import write_report

    url, _, study = open_existing(args.storage, args.study)
    path = write_report(study, args.output, redact(url))
    print(f"wrote the report on {study.study_name!r} to {path}")
    return 0


def cmd_delete(args, argv) -> int:
    url, _, study = open_existing(args.storage, args.study)
    n = len(study.get_trials(deepcopy=False))
    if not args.yes:
        try:
            answer = input(f"delete study {study.study_name!r} with {n} trials from {redact(url)}? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print(f"kept study {study.study_name!r}; nothing was deleted")  # a user saying no is no error
            return 0
    import optuna

    from search._optuna import study_storage
    from search.tracking._checkpoints import artifacts_of, remove_artifacts
    from search.tracking._store import artifact_store_for

    where, store = artifact_store_for(args.artifacts, url)  # a bad --artifacts is refused before anything goes
    kept = artifacts_of(study.get_trials(deepcopy=False))
    storage = study_storage(study)
    optuna.delete_study(study_name=study.study_name, storage=storage)
    try:  # its confirmation retrains go with it
        optuna.delete_study(study_name=study.study_name + CONFIRM_SUFFIX, storage=storage)
    except KeyError:
        pass
    removed = remove_artifacts(store, kept) if kept else 0
    files = f" and {removed} kept file{'s' if removed != 1 else ''} in {where}" if removed else ""
    print(f"deleted study {study.study_name!r} ({n} trials){files}")
    return 0
