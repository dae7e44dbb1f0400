"""A model function: the user's own network (``search run --model my_pkg.models:build``).

A model function takes one row's shape (as the data gives it: ``(1, 28, 28)`` for the
image sets, ``(features,)`` for a table, an .npz's own row shape), the number of
outputs (one per class, or one for regression) and, as keyword arguments, the model
parameters a trial samples; it returns an ``nn.Module`` mapping a batch ``[B, *shape]``
to ``[B, outputs]``::

    def build(input_shape, num_outputs, hidden=256, dropout=0.1):
        return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.ReLU(),
                             nn.Dropout(dropout), nn.Linear(hidden, num_outputs))

It is named ``module.path:function`` (importable) or ``path/to/file.py:function``, and
checked once before any trial runs (`check_model`): it imports, takes the parameters,
and returns a module whose output has the right shape. Every failure is one line.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from objectives._errors import ModelError
from objectives.models._mlp import MLP, ModelConfig

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """A model function (by name) and the parameter values to call it with."""

    function: str = MLP
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"function": self.function, "params": dict(self.params)}


def as_spec(model: ModelSpec | ModelConfig) -> ModelSpec:
    """A model function and its parameters; an MLP's configuration becomes the built-in function's."""
    if isinstance(model, ModelSpec):
        return model
    return ModelSpec(MLP, {"hidden": list(model.hidden), "activation": model.activation, "dropout": model.dropout})


def resolve(ref: str) -> Callable[..., Any]:
    """The function ``ref`` names: ``module.path:function`` or ``path/to/file.py:function``."""
    module_name, sep, attr = ref.rpartition(":")
    if not sep or not module_name or not attr:
        raise ModelError(f"`model` {ref}: name a function as module.path:function or file.py:function")
    if module_name.endswith(".py"):
        module = _from_file(ref, Path(module_name))
    else:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - the user's module: any error on import is theirs to see
            raise ModelError(
                f"`model` {ref}: cannot import {module_name} ({type(exc).__name__}: {_line(exc)})"
            ) from exc
    function = getattr(module, attr, None)
    if function is None:
        raise ModelError(f"`model` {ref}: {module_name} has no function {attr!r}")
    if not callable(function):
        raise ModelError(f"`model` {ref}: {attr} is a {type(function).__name__}, not a function")
    return function


def _from_file(ref: str, path: Path):
    if not path.is_file():
        raise ModelError(f"`model` {ref}: no such file {path}")
    name = f"search_model_{abs(hash(str(path.resolve())))}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file: any error on import is theirs to see
        del sys.modules[name]
        raise ModelError(f"`model` {ref}: cannot import {path} ({type(exc).__name__}: {_line(exc)})") from exc
    return module


def parameters_of(function: Callable[..., Any]) -> tuple[tuple[str, ...], bool, dict[str, Any]]:
    """(the keyword parameters after the first two, whether it takes **kwargs, their defaults)."""
    signature = inspect.signature(function)
    params = list(signature.parameters.values())
    named = tuple(p.name for p in params[2:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    anything = any(p.kind == p.VAR_KEYWORD for p in params)
    defaults = {p.name: p.default for p in params[2:] if p.default is not p.empty}
    return named, anything, defaults


def check_signature(ref: str, function: Callable[..., Any], params: Mapping[str, Any]) -> None:
    """The function takes (input_shape, num_outputs) and every parameter the space gives it."""
    try:
        inspect.signature(function).bind(None, None, **params)
    except TypeError as exc:
        named, _, _ = parameters_of(function)
        takes = ", ".join(named) or "no parameters"
        raise ModelError(
            f"`model` {ref}: cannot be called as {_name(function)}(input_shape, num_outputs, "
            f"{', '.join(params) or '...'}) ({exc}); its parameters after the first two: {takes}"
        ) from None


def build_model(spec: ModelSpec, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """The network of ``spec``; an error in the user's function is one `ModelError` line."""
    from torch import nn

    function = resolve(spec.function)
    try:
        model = function(tuple(input_shape), int(num_outputs), **dict(spec.params))
    except Exception as exc:  # noqa: BLE001 - the user's function: its error is theirs to see
        raise ModelError(
            f"`model` {spec.function}: {_name(function)}(...) failed with {type(exc).__name__}: {_line(exc)}"
        ) from exc
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"`model` {spec.function}: {_name(function)}(...) returned a {type(model).__name__}, not a torch nn.Module"
        )
    return model


def check_model(spec: ModelSpec, input_shape: tuple[int, ...], num_outputs: int) -> None:
    """Build the network once and run two rows through it: what a trial would do, before any trial runs."""
    import torch

    check_signature(spec.function, resolve(spec.function), spec.params)
    model = build_model(spec, input_shape, num_outputs)
    rows = torch.zeros((2, *input_shape))
    try:
        with torch.no_grad():
            out = model.eval()(rows)
    except Exception as exc:  # noqa: BLE001 - the user's network: its error is theirs to see
        raise ModelError(
            f"`model` {spec.function}: its network failed on a batch of shape {tuple(rows.shape)} "
            f"({type(exc).__name__}: {_line(exc)})"
        ) from exc
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_outputs):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelError(
            f"`model` {spec.function}: its network maps a batch of shape {tuple(rows.shape)} to {shape}, "
            f"but must map it to (2, {num_outputs}): one output per {'class' if num_outputs > 1 else 'row'}"
        )


def _name(function: Callable[..., Any]) -> str:
    return getattr(function, "__name__", "model function")


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""
