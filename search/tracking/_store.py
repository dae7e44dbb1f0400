"""Optuna's artifact store for a run: a folder (beside the SQLite file by default), s3://BUCKET or gs://BUCKET."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

from search.storages import storage_kind
from search.storages._urls import sqlite_file
from search.tracking._config import check_artifacts

DEFAULT_FOLDER = Path("studies") / "artifacts"  # for a storage that is not a file on this machine


def artifacts_location(given: str | None, storage_url: str) -> str:
    """``given``, else a folder beside the SQLite file (``studies/s.db`` -> ``studies/s-artifacts``), else
    ``studies/artifacts``. Workers on several machines give a place they all reach (a shared folder, a bucket)."""
    if given:
        return given
    file = sqlite_file(storage_url) if storage_kind(storage_url) == "sqlite" else None
    return str(file.with_name(f"{file.stem}-artifacts") if file is not None else DEFAULT_FOLDER)


def artifact_store_for(given: str | None, storage_url: str) -> tuple[str, Any]:
    """Where the run's artifact store is (`artifacts_location`), and the store."""
    where = artifacts_location(given, storage_url)
    return where, open_artifact_store(where)


def open_artifact_store(location: str) -> Any:
    """The Optuna artifact store at ``location`` (a `SearchError` for one that is none); a folder is made on the
    first write, not here."""
    from optuna.artifacts import FileSystemArtifactStore

    check_artifacts(location)
    scheme, sep, bucket = location.partition("://")
    if sep and scheme == "s3":
        from optuna.artifacts import Boto3ArtifactStore

        return Boto3ArtifactStore(bucket.strip("/"))
    if sep and scheme == "gs":
        from optuna.artifacts import GCSArtifactStore

        return GCSArtifactStore(bucket.strip("/"))
    return _MadeOnWrite(location, FileSystemArtifactStore)


def read_state(store: Any, artifact: str) -> dict[str, Any]:
    """A checkpoint or weights artifact, as tensors on the CPU (``weights_only``: a file that runs no code)."""
    import torch

    with store.open_reader(artifact) as reader:
        return torch.load(io.BytesIO(reader.read()), map_location="cpu", weights_only=True)


class _MadeOnWrite:
    """A `FileSystemArtifactStore` whose folder is made when the first artifact is written (a run that saves
    nothing leaves no folder behind)."""

    def __init__(self, folder: str, store_class: type):
        self.folder = folder
        self._store = store_class(folder)

    def open_reader(self, artifact_id: str):
        return self._store.open_reader(artifact_id)

    def write(self, artifact_id: str, content_body) -> None:
        """Optuna's write; one that fails half-way (a full disk) leaves no partial file behind."""
        os.makedirs(self.folder, exist_ok=True)
        try:
            self._store.write(artifact_id, content_body)
        except BaseException:
            with contextlib.suppress(Exception):
                self._store.remove(artifact_id)
            raise

    def remove(self, artifact_id: str) -> None:
        self._store.remove(artifact_id)
