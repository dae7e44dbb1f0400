"""Every use of Optuna's private API, in one place.

Optuna keeps no promise about these names. `tests/test_optuna_private.py` checks each
against the installed Optuna, so an upgrade that moves one fails there, loudly, rather
than mid-study on a user's cluster. pyproject.toml pins the Optuna range the tests cover.
"""

from search._optuna._batches import StudyView, write_journal_logs, write_trial_attrs
from search._optuna._core import (
    RDB_PRIVATE_WRITES,
    BaseHeartbeat,
    JournalStorageHooks,
    RDBStorageHooks,
    artifact_ids,
    asked_trial,
    fail_stale_trials,
    heartbeat_thread,
    journal_file_path,
    journal_lock,
    keep_trials_in_order,
    only_queued_trials,
    rdb_heartbeats,
    redis_journal,
    redis_ping,
    redis_time,
    share_params,
    storage_backend,
    study_id,
    study_storage,
    take_waiting,
    trial_id,
    trials_of_this_ask,
)
from search._optuna._grpc import GrpcStorageHooks, grpc_deadline, grpc_proxy_server

__all__ = [
    "RDB_PRIVATE_WRITES",
    "BaseHeartbeat",
    "GrpcStorageHooks",
    "JournalStorageHooks",
    "RDBStorageHooks",
    "StudyView",
    "artifact_ids",
    "asked_trial",
    "fail_stale_trials",
    "heartbeat_thread",
    "share_params",
    "grpc_deadline",
    "grpc_proxy_server",
    "journal_file_path",
    "rdb_heartbeats",
    "redis_ping",
    "redis_time",
    "storage_backend",
    "study_id",
    "study_storage",
    "take_waiting",
    "trial_id",
    "trials_of_this_ask",
    "journal_lock",
    "keep_trials_in_order",
    "only_queued_trials",
    "redis_journal",
    "write_journal_logs",
    "write_trial_attrs",
]
