"""Saving a trained model and loading it back: a state_dict, and a JSON file beside it.

The JSON holds what rebuilds the network (its model function and parameters, one row's
shape, the number of outputs),
the figures of its training and, for a table, the preprocessing; the weights are loaded
with ``weights_only=True``. A model file runs no code by itself: the built-in MLP needs no
import, and a model made by a user's function loads only when the caller names that function
again (``search predict --function file.py:build``), and its name and the sha256 of its
source match what was recorded when it was saved. A crafted ``.json`` naming
``subprocess:call`` is refused before anything is imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from objectives._errors import ObjectiveError
from objectives._files import staged
from objectives.models._function import ModelSpec, as_spec, build_model
from objectives.models._mlp import MLP, ModelConfig, build_mlp


def metrics_path(model_path: str | Path) -> Path:
    return Path(model_path).with_suffix(".json")


def save_model(
    model: nn.Module,
    path: str | Path,
    spec: ModelSpec | ModelConfig,
    extra: dict[str, Any],
    input_shape: tuple[int, ...] | None = None,
    num_outputs: int | None = None,
) -> Path:
    """Save the state_dict at ``path``, and what rebuilds the network and the figures at ``path`` with .json.

    ``input_shape`` and ``num_outputs`` default to the first and last layer's sizes (an MLP).
    """
    path = Path(path)
    if input_shape is None or num_outputs is None:
        linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
        input_shape, num_outputs = (linear[0].in_features,), linear[-1].out_features
    if path.is_dir():
        raise ObjectiveError(f"cannot save the model to {path}: it is a folder; give a file's name (NAME.pt)")
    described = as_spec(spec).to_dict()
    if described["function"] != MLP:
        described["source_sha256"] = source_hash(described["function"])
        described["source_path"] = source_path(described["function"])
    record = {"model": described, "input_shape": list(input_shape), "num_outputs": int(num_outputs), **extra}
    staged_files: list[Path] = []
    try:
        # Both files are written whole before either is put in place: a full disk leaves the old model, or none.
        staged_files.append(staged(path, lambda out: torch.save(model.state_dict(), out)))
        text = (json.dumps(record, indent=2, default=str) + "\n").encode()
        staged_files.append(staged(metrics_path(path), lambda out: out.write(text)))
        os.replace(staged_files[0], path)
        os.replace(staged_files[1], metrics_path(path))
    except (OSError, RuntimeError) as exc:  # torch.save reports a failed write as a RuntimeError
        for leftover in staged_files:
            with contextlib.suppress(OSError):
                os.unlink(leftover)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        raise ObjectiveError(f"cannot save the model to {path}: {reason}") from exc
    return metrics_path(path)


def source_path(ref: str) -> str | None:
    """The absolute path of the source file a model function ``ref`` lives in (None when it has no file)."""
    import importlib.util

    module, _, _ = ref.rpartition(":")
    if module.endswith(".py"):
        return str(Path(module).resolve())
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return str(Path(found.origin).resolve()) if found is not None and found.origin and found.has_location else None


def source_hash(ref: str) -> str | None:
    """The sha256 of the source file a model function ``ref`` lives in (None when it has no file)."""
    import hashlib

    where = source_path(ref)
    source = Path(where) if where else None
    try:
        return hashlib.sha256(source.read_bytes()).hexdigest() if source is not None else None
    except OSError:
        return None


def _named_function(described: dict[str, Any], function: str | None, path: Path) -> str:
    """The model function to import: the caller's, once it matches the record (the record alone is never enough)."""
    recorded = str(described["function"])
    if recorded == MLP:
        return MLP
    if function is None:
        raise ObjectiveError(
            f"{path} was built by the model function {recorded}; a model file runs no code by itself: "
            f"name the function to load it with (`function` {_where_recorded(described)})"
        )
    function = _found(function, described)
    if function.rpartition(":")[2] != recorded.rpartition(":")[2]:
        raise ObjectiveError(f"`function` {function} is not the function {path} was built by ({recorded})")
    wanted = described.get("source_sha256")
    if wanted is None:  # nothing recorded to compare a moved file with: only the very name will do
        if function != recorded:
            raise ObjectiveError(f"`function` {function} is not the function {path} was built by ({recorded})")
        return function
    if source_hash(function) != wanted:
        raise ObjectiveError(
            f"`function` {function}: its source is not the one {path} was built with "
            f"(sha256 {str(wanted)[:12]} recorded); name the file it was trained with"
        )
    return function


def _where_recorded(described: dict[str, Any]) -> str:
    """The recorded function with its file's absolute path, when a file was recorded."""
    recorded, where = str(described["function"]), described.get("source_path")
    module, _, name = recorded.rpartition(":")
    return f"{where}:{name}" if where and module.endswith(".py") else recorded


def _found(function: str, described: dict[str, Any]) -> str:
    """``function`` (file.py:name) as named, or, where no such file is here, the file the model was
    built from, if it is that file by name: a model loads from any folder once its function is named."""
    module, _, name = function.rpartition(":")
    where = described.get("source_path")
    if not module.endswith(".py") or Path(module).is_file() or not where:
        return function
    return f"{where}:{name}" if Path(where).name == Path(module).name and Path(where).is_file() else function


def load_model(path: str | Path, function: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """A model saved by `save_model`, rebuilt from its JSON and loaded with ``weights_only=True``.

    ``function``: the model function of a model made by one (``file.py:build``), named by the caller,
    which must match the recorded name and source (see the module doc). A model of an earlier
    version (``model: {hidden, activation}``) is rebuilt as the MLP it was.
    """
    path = Path(path)
    try:
        record = json.loads(metrics_path(path).read_text())
        described = record["model"]
        if "function" in described:
            spec = ModelSpec(_named_function(described, function, path), described.get("params") or {})
            model = build_model(spec, tuple(record["input_shape"]), record["num_outputs"])
        else:
            config = ModelConfig(hidden=tuple(described["hidden"]), activation=described["activation"])
            model = build_mlp(config, record["in_features"], record["num_classes"])
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except pickle.UnpicklingError as exc:
        raise ObjectiveError(f"cannot load a model from {path}: not a state_dict saved by `search train`") from exc
    except ObjectiveError as exc:
        raise ObjectiveError(f"cannot load a model from {path}: {exc}") from exc
    except EOFError as exc:  # an empty or cut-short weights file
        raise ObjectiveError(f"cannot load a model from {path}: the weights file is empty or cut short") from exc
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise ObjectiveError(
            f"cannot load a model from {path}: {str(exc).splitlines()[0] if str(exc) else exc}"
        ) from exc
    return model.eval(), record
