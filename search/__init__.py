"""Study orchestration, the `search` command line, and the Python API (`tune`, `load`).

Names are imported on first use (PEP 562), so `search studies` and the other read-only
commands start without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "search._api": ("Study", "TrainedModel", "load", "tune"),
    "search.cli._cli": ("main",),
    "search.study._config": ("RunConfig",),
    "search._errors": ("SearchError",),
    "search.study._pruners": ("PRUNERS", "make_pruner"),
    "search.study._record": ("STUDY_ATTR",),
    "search.study._samplers": ("SAMPLERS", "make_sampler"),
    "search.study._run": ("run_study",),
    "search.study._summary": ("RunSummary",),
    "search.study._pick": ("Confirmed", "Pick"),
    "search.confirmation": ("ConfirmConfig", "run_confirmation"),
    "search.confirmation._summary": ("Confirmation", "Lead", "Quote", "Ranked", "Yardstick"),
    "search.storages": ("DEFAULT_STORAGE", "STORAGE_ENV", "open_storage", "redact", "resolve_storage_url"),
    "search.tracking._config": ("TrackingConfig",),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    try:
        module = _MODULE_OF[name]
    except KeyError:
        raise AttributeError(f"module 'search' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from search._api import Study, TrainedModel, load, tune
    from search._errors import SearchError
    from search.cli._cli import main
    from search.confirmation import ConfirmConfig, run_confirmation
    from search.confirmation._summary import Confirmation, Lead, Quote, Ranked, Yardstick
    from search.storages import DEFAULT_STORAGE, STORAGE_ENV, open_storage, redact, resolve_storage_url
    from search.study._config import RunConfig
    from search.study._pick import Confirmed, Pick
    from search.study._pruners import PRUNERS, make_pruner
    from search.study._record import STUDY_ATTR
    from search.study._run import run_study
    from search.study._samplers import SAMPLERS, make_sampler
    from search.study._summary import RunSummary
    from search.tracking._config import TrackingConfig
