"""Optuna's artifact store for a run: a folder (beside the SQLite file by default), s3://BUCKET or gs://BUCKET."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from search.storages import storage_kind

DEFAULT_FOLDER = Path("studies") / "artifacts"  # for a storage that is not a file on this machine


def artifacts_location(given: str | None, storage_url: str) -> str:
    """``given``, else a folder beside the SQLite file (``studies/s.db`` -> ``studies/s-artifacts``), else
    ``studies/artifacts``. Workers on several machines give a place they all reach (a shared folder, a bucket)."""
    if given:
        return given
    if storage_kind(storage_url) == "sqlite":
        path = storage_url.split(":///", 1)[-1]
        if path and path != ":memory:":
            file = Path(path)
            return str(file.with_name(f"{file.stem}-artifacts"))
    return str(DEFAULT_FOLDER)


def open_artifact_store(location: str) -> Any:
    """The Optuna artifact store at ``location`` (checked by `TrackingConfig`); a folder is made on the first
    write, not here."""
    from optuna.artifacts import FileSystemArtifactStore

    scheme, sep, bucket = location.partition("://")
    if sep and scheme == "s3":
        from optuna.artifacts import Boto3ArtifactStore

        return Boto3ArtifactStore(bucket.strip("/"))
    if sep and scheme == "gs":
        from optuna.artifacts import GCSArtifactStore

        return GCSArtifactStore(bucket.strip("/"))
    return _MadeOnWrite(location, FileSystemArtifactStore)


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
