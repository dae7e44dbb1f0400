"""Where trials are tracked and checkpointed: MLflow, TensorBoard, Optuna's artifact store.

- `_config`: ``TrackingConfig``, the run's ``--mlflow``, ``--tensorboard``, ``--checkpoint-every``, ``--artifacts``;
- `_tracking`: a worker's trackers, each told of every epoch and every ended trial, none able to stop a study;
- `_mlflow`, `_tensorboard`: one tracker each, through the tool's own client;
- `_checkpoints`: a trial's state saved as it trains, a dead trial's retry going on from it, the best weights kept;
- `_store`: Optuna's artifact store for a run (a folder beside the study, or a bucket).
"""

from search.tracking._config import CHECKPOINT_SECONDS, MLFLOW_ENV, TrackingConfig, mlflow_uri
from search.tracking._tracking import Tracking, data_tags, open_tracking

__all__ = ["CHECKPOINT_SECONDS", "MLFLOW_ENV", "Tracking", "TrackingConfig", "data_tags", "mlflow_uri", "open_tracking"]
