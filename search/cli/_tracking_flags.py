"""`search run`'s trackers and checkpoints: --mlflow, --tensorboard, --checkpoint-every, --artifacts, --keep."""

from __future__ import annotations

import argparse

from search.cli._help import default, given_fields


def add_tracking_flags(p) -> None:
    from search.tracking import CHECKPOINT_SECONDS, MLFLOW_ENV, TrackingConfig

    S = argparse.SUPPRESS
    p.add_argument(
        "--mlflow",
        metavar="URI",
        nargs="?",
        const="",
        default=S,
        help=f"log the study to MLflow: an experiment named as the study, a run per trial under one for this run "
        f"(URI: http://host:5000, a folder...; without one, ${MLFLOW_ENV}); a tracker that is down stops nothing",
    )
    p.add_argument(
        "--tensorboard",
        metavar="DIR",
        default=S,
        help="each trial's epochs as TensorBoard scalars in DIR/STUDY/trial-N, and the HParams table "
        "(tensorboard --logdir DIR)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        default=S,
        help=f"save a trial's model and optimizer every N epochs, so that a killed worker's trial goes on from "
        f"there (default: after {CHECKPOINT_SECONDS:.0f} s of a trial's training, so short trials never do; 0: never)",
    )
    p.add_argument(
        "--artifacts",
        metavar="DIR",
        default=S,
        help="Optuna's artifact store for checkpoints and the best trials' weights: a folder, s3://BUCKET or "
        "gs://BUCKET (default: beside the SQLite file, else studies/artifacts; give one all machines reach)",
    )
    p.add_argument(
        "--keep",
        type=int,
        metavar="K",
        default=S,
        help=f"keep the final weights of the K best trials and the baseline, for `search export --model` "
        f"(default: {default(TrackingConfig, 'keep')}; 0: none)",
    )


def tracking_config(args: argparse.Namespace):
    from search.tracking import TrackingConfig, mlflow_uri

    given = given_fields(args, TrackingConfig)
    if "mlflow" in given:
        given["mlflow"] = mlflow_uri(given["mlflow"])
    return TrackingConfig(**given)
