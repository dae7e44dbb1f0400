"""The data configuration: which data set, where it lives, how the splits are carved (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass

from objectives._errors import DataError
from objectives._tasks import TASKS

DATASETS = ("fashion-mnist", "mnist", "kmnist", "synthetic", "table")
# A table's test split is carved with this seed, whatever the study's: the same file gets
# the same test split in every study, and confirmation's resamples never move it.
TEST_SEED = 0
MAX_BINS = 256


@dataclass(frozen=True)
class DataConfig:
    """Which data set, where it lives, and how the validation split is carved."""

    dataset: str = "fashion-mnist"
    data_dir: str = "data"
    validation_fraction: float = 0.1
    seed: int = 0
    limit_train: int | None = None
    stratify: bool = True  # each class keeps its share in the validation split (studies made before: False)
    download: bool = True  # a missing data set is downloaded, each connection waiting at most DOWNLOAD_TIMEOUT
    # The user's own data (dataset "table"): a CSV, Parquet or .npz file and the column to predict.
    data_file: str | None = None
    target: str | None = None
    test_fraction: float = 0.2  # carved once from data_file, stratified (TEST_SEED)...
    test_file: str | None = None  # ...unless the test rows come in a file of their own
    fill_missing: str | None = None  # "median": numeric gaps take the column's median
    drop: tuple[str, ...] = ()  # columns of data_file left out
    drop_missing_target: bool = False  # rows without a target value left out (with a note), not refused
    # Quantile bins of each numeric column, given to the network beside its standardised value
    # (`objectives.data._encoder`); 0: the standardised value alone (studies made before: 0).
    bins: int = 32
    # The feature columns to take, as a study recorded them (numeric and text, in the file's order):
    # a study goes on with its own features whatever this version would now leave out. None: every
    # column but the target, `drop`, a saved row index and those with one value.
    columns: tuple[str, ...] | None = None
    # What the target is: "classification" or "regression"; None: classification, and a
    # target that looks like a number to predict is refused (the user says which it is).
    task: str | None = None

    def __post_init__(self) -> None:
        # Messages name the fields (`limit_train`); the command line spells them as its flags.
        if self.dataset not in DATASETS:
            raise DataError(f"`dataset` is {self.dataset!r}, but must be one of {', '.join(DATASETS)}")
        if isinstance(self.validation_fraction, bool) or not isinstance(self.validation_fraction, (int, float)):
            raise DataError(f"`validation_fraction` is {self.validation_fraction!r}, but must be a number")
        if not 0.0 < self.validation_fraction < 1.0:
            raise DataError(f"`validation_fraction` is {self.validation_fraction}, but must be > 0 and < 1")
        if self.limit_train is not None and (
            isinstance(self.limit_train, bool) or not isinstance(self.limit_train, int)
        ):
            raise DataError(f"`limit_train` is {self.limit_train!r}, but must be an integer")
        if self.limit_train is not None and self.limit_train < 1:
            raise DataError(f"`limit_train` is {self.limit_train}, but must be >= 1")
        if self.data_file is not None and self.dataset == "fashion-mnist":  # the default: --data names the data set
            object.__setattr__(self, "dataset", "table")
        if self.data_file is not None and self.dataset != "table":
            raise DataError(f"`data_file` and `dataset` {self.dataset} are two data sets; give one")
        if self.dataset == "table" and self.data_file is None:
            raise DataError("`dataset` table needs `data_file`, the file of your table (CSV, Parquet or .npz)")
        if (
            isinstance(self.test_fraction, bool)
            or not isinstance(self.test_fraction, (int, float))
            or not 0.0 < self.test_fraction < 1.0
        ):
            raise DataError(f"`test_fraction` is {self.test_fraction}, but must be > 0 and < 1")
        if (
            isinstance(self.bins, bool)
            or not isinstance(self.bins, int)
            or not (self.bins == 0 or 2 <= self.bins <= MAX_BINS)
        ):
            raise DataError(f"`bins` is {self.bins!r}, but must be 0 or an integer from 2 to {MAX_BINS}")
        if self.fill_missing is not None and self.fill_missing != "median":
            raise DataError(f"`fill_missing` is {self.fill_missing!r}, but must be median")
        object.__setattr__(self, "drop", tuple(self.drop))
        if self.columns is not None:
            object.__setattr__(self, "columns", tuple(self.columns))
        if self.task is not None and self.task not in TASKS:
            raise DataError(f"`task` is {self.task!r}, but must be one of {', '.join(TASKS)}")

    def check_applies(self, given: frozenset[str] = frozenset()) -> None:
        """Refuse options that mean nothing for this data set (``--target`` with an image set, say).

        ``given``: the options the user typed (field names), for the ones with a default value.
        """
        if self.dataset == "table":
            return
        options = (
            ("`target`", self.target),
            ("`test_file`", self.test_file),
            ("`fill_missing`", self.fill_missing),
            ("`drop`", self.drop),
            ("`drop_missing_target`", self.drop_missing_target),
            ("`task`", self.task is not None),
            ("`test_fraction`", "test_fraction" in given),
            ("`bins`", "bins" in given),
        )
        flags = [flag for flag, value in options if value]
        if flags:
            raise DataError(f"{flags[0]} applies to your own data (`data_file`), not to `dataset` {self.dataset}")

    @property
    def task_name(self) -> str:
        """What the data set is: ``classification`` or ``regression``."""
        return self.task or "classification"
