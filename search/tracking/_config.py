"""Where a run's trials are tracked and checkpointed: ``--mlflow``, ``--tensorboard``, ``--checkpoint-every``, ``--artifacts``."""

from __future__ import annotations

import os
from dataclasses import dataclass

from search._errors import SearchError

MLFLOW_ENV = "MLFLOW_TRACKING_URI"  # MLflow's own variable: `--mlflow` without a URI takes it
# A trial checkpoints after the first epoch that ends this long after its start (or its last checkpoint), unless
# `checkpoint_every` says otherwise: a short trial never pays for one, a long one loses at most this much.
CHECKPOINT_SECONDS = 120.0


@dataclass(frozen=True)
class TrackingConfig:
    """A run's trackers and checkpoints; none of them changes what a trial computes."""

    mlflow: str | None = None  # an MLflow tracking URI (http://host:5000, a folder, sqlite:///...); None: off
    tensorboard: str | None = None  # a folder for TensorBoard's event files; None: off
    checkpoint_every: int | None = None  # epochs between checkpoints; None: every CHECKPOINT_SECONDS; 0: never
    artifacts: str | None = None  # Optuna artifact store: a folder, s3://BUCKET or gs://BUCKET; None: beside the study
    keep: int = 5  # the weights of this many best completed trials (and the baseline's) are kept
    # Set by the run: the MLflow run of this `search run`, its trials' parent ("": MLflow was down as it started).
    mlflow_parent: str | None = None

    def __post_init__(self) -> None:
        if self.mlflow is not None and not str(self.mlflow).strip():
            raise SearchError(f"`mlflow` is empty: give a tracking URI, or set ${MLFLOW_ENV}")
        if self.tensorboard is not None and not str(self.tensorboard).strip():
            raise SearchError("`tensorboard` is empty, but must be a folder")
        if self.checkpoint_every is not None and self.checkpoint_every < 0:
            raise SearchError(f"`checkpoint_every` is {self.checkpoint_every}, but must be >= 0 epochs (0: never)")
        if self.keep < 0:
            raise SearchError(f"`keep` is {self.keep}, but must be >= 0")
        if self.artifacts is not None:
            check_artifacts(self.artifacts)

    @property
    def checkpoints(self) -> bool:
        return self.checkpoint_every != 0


def mlflow_uri(given: str | None) -> str:
    """``--mlflow``'s URI: the one given, else ``$MLFLOW_TRACKING_URI``."""
    uri = given or os.environ.get(MLFLOW_ENV, "")
    if not uri.strip():
        raise SearchError(f"`mlflow` has no URI: give one (http://host:5000, a folder), or set ${MLFLOW_ENV}")
    return uri


BUCKETS = {"s3": "boto3", "gs": "google.cloud.storage"}  # Optuna's artifact stores of a bucket, and what each needs


def check_artifacts(location: str) -> None:
    """A folder, s3://BUCKET or gs://BUCKET, with the package the bucket's store needs installed."""
    import importlib.util

    scheme, sep, bucket = location.partition("://")
    if not location.strip() or (sep and (scheme not in BUCKETS or not bucket.strip("/"))):
        raise SearchError(f"`artifacts` is {location!r}, but must be a folder, s3://BUCKET or gs://BUCKET")
    if sep:
        package = BUCKETS[scheme]
        try:
            found = importlib.util.find_spec(package) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise SearchError(
                f"`artifacts` is {location!r}, which needs {package}: pip install {package.replace('.', '-')}"
            )
