"""The configuration of one `search run`: a frozen dataclass, each default written once."""

from __future__ import annotations

from dataclasses import dataclass, field

from objectives import DEVICES, DataConfig
from objectives.models import MLP
from search._errors import SearchError
from search.confirmation._config import CONFIRM_SUFFIX, ConfirmConfig
from search.study._pruners import PRUNERS
from search.study._samplers import SAMPLERS
from search.tracking._config import TrackingConfig


@dataclass(frozen=True)
class RunConfig:
    """What to optimise, where to store it, and how to sample and prune."""

    study: str = "fmnist"
    storage: str | None = None  # None: $SEARCH_STORAGE, else the SQLite file under ./studies/
    n_trials: int | None = 20  # this run's trials; None: until the timeout (or the study's budget)
    total_trials: int | None = None  # the study's budget, shared by every worker on every machine; None: none
    warm_start: str | None = None  # a new study's first trials: this study's best configurations
    warm_start_storage: str | None = None  # where that study is; None: this run's storage
    timeout: float | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    device: str = "auto"
    space: str | None = None  # a YAML file; None: the default space
    max_epochs: int | None = None  # None: the space's own epochs range (1..20 by default)
    jobs: int | None = None  # worker processes on this machine; None: one per core ($SEARCH_JOBS overrides)
    threads: int | None = None  # torch threads per worker process; None: the cores shared out among the workers
    fuse: int | None = None  # trials trained as one model per worker; None: measured per shape; 1: one at a time
    heartbeat: int | None = 60  # seconds; None or 0: no heartbeat
    model: str = MLP  # the model function: module.path:function or file.py:function
    metric: str | None = None  # None: the task's default (accuracy; rmse for regression)
    costs: tuple[str, ...] = ()  # a multi-objective study's further objectives, minimised (objectives.COSTS)
    yardstick: str = "hgb"  # after confirmation on a table: scikit-learn's HistGradientBoosting beside the pick; "none"
    quiet: bool = False  # no trial lines, in any worker (the Python API's default)
    data: DataConfig = field(default_factory=DataConfig)
    confirm: ConfirmConfig = field(default_factory=ConfirmConfig)  # leaders retrained after the search
    tracking: TrackingConfig = field(default_factory=TrackingConfig)  # MLflow, TensorBoard, checkpoints
    # The options the user gave (flag names as fields: "dataset", "seed", "space", ...).
    # Continuing a study, the others are taken from its record. None: all count as given.
    explicit: frozenset[str] | None = None

    @property
    def given(self) -> frozenset[str]:
        return _ALL_OPTIONS if self.explicit is None else self.explicit

    def __post_init__(self) -> None:
        # Messages name the fields (`n_trials`); the command line spells them as its flags.
        if not self.study.strip():
            raise SearchError("`study` is empty, but must be a name")
        if self.study.endswith(CONFIRM_SUFFIX):
            raise SearchError(
                f"`study` {self.study!r} ends in {CONFIRM_SUFFIX}, which names the retrains of a confirmation; "
                "choose another name"
            )
        if self.n_trials is not None and self.n_trials < 1:
            raise SearchError(f"`n_trials` is {self.n_trials}, but must be >= 1")
        if self.timeout is not None and self.timeout <= 0:
            raise SearchError(f"`timeout` is {self.timeout:g}, but must be > 0 seconds")
        if self.total_trials is not None and self.total_trials < 1:
            raise SearchError(f"`total_trials` is {self.total_trials}, but must be >= 1")
        if self.n_trials is None and self.timeout is None and self.total_trials is None:
            raise SearchError("give `n_trials`, `timeout` or `total_trials`, or the study never ends")
        if self.sampler not in SAMPLERS:
            raise SearchError(f"`sampler` is {self.sampler!r}, but must be one of {', '.join(SAMPLERS)}")
        if self.pruner not in PRUNERS:
            raise SearchError(f"`pruner` is {self.pruner!r}, but must be one of {', '.join(PRUNERS)}")
        if self.device not in DEVICES:
            raise SearchError(f"`device` is {self.device!r}, but must be one of {', '.join(DEVICES)}")
        if self.jobs is not None and self.jobs < 1:
            raise SearchError(f"`jobs` is {self.jobs}, but must be >= 1")
        if self.threads is not None and self.threads < 1:
            raise SearchError(f"`threads` is {self.threads}, but must be >= 1")
        if self.fuse is not None and (isinstance(self.fuse, bool) or not isinstance(self.fuse, int) or self.fuse < 1):
            raise SearchError(f"`fuse` is {self.fuse}, but must be an integer >= 1 (1: one trial at a time)")
        if self.heartbeat is not None and self.heartbeat < 0:
            raise SearchError(f"`heartbeat` is {self.heartbeat}, but must be >= 0 seconds (0 turns it off)")
        if self.max_epochs is not None and self.max_epochs < 1:
            raise SearchError(f"`max_epochs` is {self.max_epochs}, but must be >= 1")
        if self.yardstick not in YARDSTICKS:
            raise SearchError(f"`yardstick` is {self.yardstick!r}, but must be one of {', '.join(YARDSTICKS)}")
        self._check_costs()
        if not isinstance(self.model, str) or not self.model.strip():
            raise SearchError("`model` is empty, but must name a function (module.path:function or file.py:function)")

    def _check_costs(self) -> None:
        from objectives import COSTS

        object.__setattr__(self, "costs", tuple(self.costs))  # a list from the API or a record: one type
        for name in self.costs:
            if name not in COSTS:
                raise SearchError(f"`costs` has {name!r}, but each must be one of {', '.join(COSTS)}")
        if len(set(self.costs)) != len(self.costs):
            raise SearchError(f"`costs` is {','.join(self.costs)}, but names a cost twice")
        if not self.costs:
            return
        if self.sampler == "cmaes":
            raise SearchError(
                "`sampler` cmaes cannot search a multi-objective study (`costs`); use tpe, gp, qmc or random"
            )
        if "pruner" in self.given and self.pruner != "none":
            raise SearchError(
                f"`pruner` {self.pruner} cannot prune a multi-objective study (`costs`): Optuna takes no epoch "
                "reports from one; leave `pruner` out"
            )

    @property
    def pruner_name(self) -> str:
        """The pruner the run uses: none for a multi-objective study, which reports no epochs."""
        return "none" if self.costs else self.pruner

    @property
    def metric_spec(self):
        """The metric the study optimises (`objectives.Metric`): its name, direction and label."""
        from objectives import metric_named

        return metric_named(self.metric, self.data.task_name)


_ALL_OPTIONS = frozenset(
    {"dataset", "validation_fraction", "seed", "limit_train", "space", "max_epochs", "model", "metric", "costs", "task"}
)
YARDSTICKS = ("hgb", "none")
