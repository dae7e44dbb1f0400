"""`search train` and `search predict`: a configuration retrained into a model, and the model applied to new rows."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from objectives import DATASETS, DEVICES, DataConfig
from search._errors import SearchError
from search._files import write_text
from search.cli._help import storage_help
from search.study._config import RunConfig
from search.study._format import format_seconds, format_value, label
from search.tracking._config import mlflow_uri
from search.trained._export import read_config
from search.trained._retrain import RETRAIN_THREADS, retrain


def add_model_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a configuration on the whole training split and test it",
        description="Train a configuration (from `search export`, or a file with only `params`) on the "
        "whole official training split, report loss and accuracy on the official test split, and save "
        "the weights (a state_dict) with a metrics file beside them.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  search train --config best.yaml\n  search train --config best.yaml --save-model models/best.pt --json\n"
        "  search train --config best.yaml --mlflow http://mlflow-host:5000",
    )
    p.add_argument("--config", required=True, help="configuration file (YAML or JSON)")
    p.add_argument("--data-dir", default=DataConfig.data_dir, help=f"torchvision root (default: {DataConfig.data_dir})")
    p.add_argument("--dataset", choices=DATASETS, help="override the configuration's data set")
    p.add_argument(
        "--data", dest="data_file", metavar="FILE", help="a table study's file, when it has moved since the export"
    )
    p.add_argument("--seed", type=int, help="(default: the configuration's data seed, else 0)")
    p.add_argument("--save-model", help="where to save the weights (default: models/CONFIG-NAME.pt)")
    p.add_argument("--device", choices=DEVICES, default=RunConfig.device, help=f"(default: {RunConfig.device})")
    p.add_argument("--limit-train", type=int, help="train on only this many samples (quick checks)")
    p.add_argument(
        "--threads",
        type=int,
        default=RETRAIN_THREADS,
        help=f"torch threads (default: {RETRAIN_THREADS}, as a trial trains: on a busy machine more threads wait for "
        "the slowest; a wide model on idle cores may gain from more)",
    )
    p.add_argument(
        "--mlflow",
        metavar="URI",
        nargs="?",
        const="",
        help="also log the model to MLflow as a PyTorch model with its input signature (`mlflow models serve` "
        "serves it), in the experiment of the configuration's study (URI: without one, $MLFLOW_TRACKING_URI)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (progress goes to stderr)")
    p.set_defaults(handler=cmd_train)

    p = subparsers.add_parser(
        "predict",
        help="apply a saved table model to new rows",
        description="Apply a model saved by `search train` (trained with --data) to a new file: its preprocessing, "
        "then the network. Writes the predicted label and each class's probability per row, in the file's order.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  search predict --model models/best.pt --data new.csv --output predictions.csv\n  search predict --model models/cnn.pt --function models.py:build --data new.npz",
    )
    p.add_argument("--model", required=True, help="the .pt file `search train` saved (its .json beside it)")
    p.add_argument(
        "--data", required=True, help="new rows: .csv, .parquet or .npz, with the columns the model was trained on"
    )
    p.add_argument(
        "--function",
        metavar="REF",
        help="the model function a model made by one was trained with (file.py:build): a model file runs "
        "no code by itself, so its function is named again, and must match the recorded name and source",
    )
    p.add_argument("--output", help="write the predictions as CSV to this file (default: the terminal)")
    p.add_argument(
        "--accept-unseen",
        action="store_true",
        help="predict even when most of a text column's values are categories the model never saw "
        "(a file of another kind, or a new vocabulary); each is encoded as none of them",
    )
    p.set_defaults(handler=cmd_predict)

    p = subparsers.add_parser(
        "split",
        help="write a table study's test rows (and the rows it searched on) to files",
        description="Write the rows a table study holds out as its test split, and optionally the rows it searched "
        "and confirmed on, as they are in the file: fit your own baselines on the same rows, score them on the same "
        "test rows.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  search split --study churn --output test.csv\n  search split --study churn --output test.csv --train-output train.csv",
    )
    p.add_argument("--study", required=True, help="study name")
    p.add_argument("--storage", help=storage_help())
    p.add_argument("--output", required=True, help="the test rows: a .csv or .parquet file")
    p.add_argument("--train-output", help="the rest (the rows the study searched on): a .csv or .parquet file")
    p.set_defaults(handler=cmd_split)


def cmd_train(args, argv) -> int:
    from objectives import metrics_path
    from search.study._progress import EpochLine

    config = read_config(args.config)
    uri = None if args.mlflow is None else mlflow_uri(args.mlflow)  # checked before the training, not after
    model_path = Path(args.save_model or Path("models") / (Path(args.config).stem + ".pt"))
    if model_path.is_dir():
        raise SearchError(f"--save-model {model_path} is a folder; give a file's name, e.g. {model_path / 'model.pt'}")
    if metrics_path(model_path) == model_path:
        raise SearchError(f"--save-model is {model_path}, but the metrics go to NAME.json beside it; give NAME.pt")
    progress = EpochLine(config.train.epochs, sys.stderr, metric=config.metric)
    trained = retrain(
        config,
        str(args.config),
        args.data_dir,
        args.dataset,
        args.data_file,
        args.seed,
        args.device,
        args.limit_train,
        on_epoch=progress.epoch,
        threads=args.threads,
    )
    progress.done()
    replaced = model_path.is_file()
    metrics = trained.save(model_path)
    if replaced:
        print(f"note: replaced the model that was at {model_path}", file=sys.stderr)
    result = trained.result
    logged = _log_to_mlflow(uri, args.config, trained) if uri else None
    if args.json:
        paths = {
            "model_path": str(model_path),
            "metrics_path": str(metrics),
            **({"mlflow_run": logged} if logged else {}),
        }
        print(json.dumps({**trained.figures, **paths}, default=str))
        return 0
    print(
        f"test {label(result.metric).removeprefix('validation ')} {format_value(result.test_value, result.metric)}, "
        f"test loss {result.test_loss:.4f} ({result.train_samples:,} training samples, {result.test_samples:,} test; "
        f"{result.epochs} epochs in {format_seconds(result.seconds)})"
    )
    if result.diverged:
        print(f"warning: training diverged: {result.diverged}", file=sys.stderr)
    print(f"saved the weights to {model_path} and the metrics to {metrics}")
    if logged:
        print(f"logged the model to MLflow: runs:/{logged}/model (mlflow models serve -m runs:/{logged}/model)")
    return 0


def _log_to_mlflow(uri: str, config_file: str, trained) -> str | None:
    """The model in MLflow (the configuration's study names the experiment); the run id, None when MLflow is down."""
    import yaml

    from search.storages import redact
    from search.tracking._mlflow import reason
    from search.trained._served import log_trained

    try:
        source = (yaml.safe_load(Path(config_file).read_text()) or {}).get("source") or {}
    except (OSError, yaml.YAMLError):
        source = {}
    try:
        return log_trained(uri, str(source.get("study") or "search train"), trained, str(config_file))
    except Exception as exc:  # noqa: BLE001 - the model is saved; MLflow is the extra
        print(
            f"note: MLflow at {redact(uri)} is unreachable ({reason(exc)}); the model is saved, not logged",
            file=sys.stderr,
        )
        return None


def cmd_split(args, argv) -> int:
    from search.study._inspect import open_existing
    from search.trained._split import write_split

    _, _, study = open_existing(args.storage, args.study)
    for line in write_split(study, args.output, args.train_output):
        print(line)
    return 0


def cmd_predict(args, argv) -> int:
    from search.trained._predict import predict, warn

    frame, counts = predict(args.model, args.data, accept_unseen=args.accept_unseen, function=args.function)
    warn(counts, args.data)
    if args.output:
        write_text(args.output, frame.to_csv(index=False))
        print(f"wrote {len(frame):,} predictions to {args.output}")
    else:
        sys.stdout.write(frame.to_csv(index=False))
    return 0
