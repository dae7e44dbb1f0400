"""Study orchestration and the `search` command line."""

from search._cli import main
from search._config import RunConfig
from search._errors import SearchError
from search._pruners import PRUNERS, make_pruner
from search._samplers import SAMPLERS, make_sampler
from search._storage import DEFAULT_STORAGE, STORAGE_ENV, open_storage, redact, resolve_storage_url
from search._study import STUDY_ATTR, RunSummary, run_study

__all__ = [
    "DEFAULT_STORAGE",
    "PRUNERS",
    "SAMPLERS",
    "STORAGE_ENV",
    "STUDY_ATTR",
    "RunConfig",
    "RunSummary",
    "SearchError",
    "main",
    "make_pruner",
    "make_sampler",
    "open_storage",
    "redact",
    "resolve_storage_url",
    "run_study",
]
