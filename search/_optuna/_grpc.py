"""Optuna's gRPC storage proxy: its client with heartbeats and deadlines, its server on a free port."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.storages._heartbeat import BaseHeartbeat  # the interface heartbeats plug into


class GrpcStorageHooks(optuna.storages.GrpcStorageProxy, BaseHeartbeat):
    """Optuna's gRPC proxy client as a heartbeat storage (Optuna gives it none): a subclass says which trials
    are stale in `stale_trial_ids`, the public name of `BaseHeartbeat`'s private method."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return self.stale_trial_ids(study_id)

    def stale_trial_ids(self, study_id: int) -> list[int]:
        raise NotImplementedError


def grpc_deadline(proxy: Any, seconds: float) -> None:
    """Give every call of Optuna's `GrpcStorageProxy` a deadline: Optuna's client sets none, and a call across a
    dead link then waits for ever. Its channel and stub (and its trial cache's stub) are replaced by ones whose
    calls end with DEADLINE_EXCEEDED after ``seconds``."""
    import grpc
    from optuna.storages._grpc.auto_generated import api_pb2_grpc

    class _Deadline(grpc.UnaryUnaryClientInterceptor):
        def intercept_unary_unary(self, continuation, details, request):
            if details.timeout is None:
                details = details._replace(timeout=seconds)
            return continuation(details, request)

    stub = api_pb2_grpc.StorageServiceStub(grpc.intercept_channel(proxy._channel, _Deadline()))
    proxy._stub = stub
    proxy._cache.grpc_client = stub


def grpc_proxy_server(storage: BaseStorage, host: str, port: int, threads: int) -> tuple[Any, int]:
    """Optuna's gRPC proxy server on ``storage``, not started, and the port it bound (``port`` 0: any free one).
    Optuna's `run_grpc_proxy_server` builds the same and then blocks; its `make_server` hides the port."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc
    from optuna.storages._grpc.auto_generated import api_pb2_grpc
    from optuna.storages._grpc.servicer import OptunaStorageProxyService

    server = grpc.server(ThreadPoolExecutor(max_workers=threads))
    api_pb2_grpc.add_StorageServiceServicer_to_server(OptunaStorageProxyService(storage), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    return server, bound
