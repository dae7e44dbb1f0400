"""Where studies live: storage URLs, opening them, heartbeats, and the clock on storage calls.

- `_urls`: the URL forms accepted, the default, passwords hidden for printing;
- `_open`: an Optuna storage for a URL, with network timeouts and one clear error;
- `_heartbeat`: running trials beat, and a dead worker's trial is failed and re-run;
- `_clock`: how long a worker waited on its storage.
"""

from search.storages._open import NETWORK_TIMEOUTS, open_storage, release_connections
from search.storages._urls import (
    DEFAULT_STORAGE,
    STORAGE_ENV,
    journal_path,
    redact,
    resolve_storage_url,
    scrub,
    storage_exists,
    storage_kind,
)

__all__ = [
    "DEFAULT_STORAGE",
    "NETWORK_TIMEOUTS",
    "STORAGE_ENV",
    "journal_path",
    "open_storage",
    "redact",
    "release_connections",
    "resolve_storage_url",
    "scrub",
    "storage_exists",
    "storage_kind",
]
