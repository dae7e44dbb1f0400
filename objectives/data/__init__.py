"""Data sources, one module each, and the splits a trial trains and validates on.

- `_images`: the MNIST-family image sets (torchvision), `_idx` their file format;
- `_synthetic`: a generated stand-in for the offline demo;
- `_tables`: the user's CSV and Parquet tables; `_arrays`: the user's .npz arrays;
- `_encoder`: a table's preprocessing, fitted on training rows;
- `_splits`: training, validation and test tensors, and how rows are divided;
- `_load`: a `DataConfig` turned into `Splits`.

None of them imports Optuna, and none imports torch until data is loaded.
"""

from objectives.data._columns import MISSING_CATEGORY
from objectives.data._config import DATASETS, DataConfig
from objectives.data._encoder import TableEncoder
from objectives.data._idx import read_idx, write_idx, write_torchvision_root
from objectives.data._images import DOWNLOAD_TIMEOUT
from objectives.data._load import IMAGE_SHAPE, load_splits, load_train_test, pool_size, table_parts
from objectives.data._splits import SEARCH, Resample, Splits, fold_count, pool_indices, split_indices
from objectives.data._tables import file_hash, read_frame

__all__ = [
    "DATASETS",
    "DOWNLOAD_TIMEOUT",
    "IMAGE_SHAPE",
    "MISSING_CATEGORY",
    "SEARCH",
    "DataConfig",
    "Resample",
    "Splits",
    "TableEncoder",
    "file_hash",
    "fold_count",
    "load_splits",
    "load_train_test",
    "pool_indices",
    "pool_size",
    "read_frame",
    "read_idx",
    "split_indices",
    "table_parts",
    "write_idx",
    "write_torchvision_root",
]
