"""The search space: what each trial samples, and the only module that calls ``trial.suggest_*``.

A space is written as a mapping, key by key, in YAML or JSON::

    lr: {low: 1.0e-4, high: 1.0e-1, log: true}   # a float range
    batch_size: {choices: [64, 128]}             # a categorical (a plain list works too)
    epochs: {low: 1, high: 10}                   # an integer range
    optimizer: adam                              # a scalar pins the parameter

Keys not given keep their defaults (`SearchSpace`'s fields). Momentum is sampled only
when the optimizer is ``momentum``; beta1 and beta2 only when it is ``adam``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import yaml

from objectives._errors import SpaceError
from objectives.models import ACTIVATIONS, ModelConfig
from objectives._train_config import LOSSES, OPTIMIZERS, TrainConfig


@dataclass(frozen=True)
class Float:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Int:
    low: int
    high: int
    log: bool = False
    step: int = 1


@dataclass(frozen=True)
class Choice:
    choices: tuple


@dataclass(frozen=True)
class Fixed:
    value: Any


Param = Union[Float, Int, Choice, Fixed]


@dataclass(frozen=True)
class _Rule:
    """A parameter's type and the values it may take."""

    kind: type
    ok: Callable[[Any], bool]
    must: str


def _named(names: tuple[str, ...]) -> _Rule:
    return _Rule(str, lambda v: v in names, f"be one of {', '.join(names)}")


_POSITIVE = _Rule(float, lambda v: v > 0, "be > 0")
_AT_LEAST_ONE = _Rule(int, lambda v: v >= 1, "be >= 1")
_UNIT = _Rule(float, lambda v: 0 <= v < 1, "be >= 0 and < 1")
RULES: dict[str, _Rule] = {
    "optimizer": _named(OPTIMIZERS),
    "lr": _POSITIVE,
    "batch_size": _AT_LEAST_ONE,
    "epochs": _AT_LEAST_ONE,
    "momentum": _UNIT,
    "weight_decay": _Rule(float, lambda v: v >= 0, "be >= 0"),
    "beta1": _UNIT,
    "beta2": _UNIT,
    "loss": _named(LOSSES),
    "activation": _named(tuple(ACTIVATIONS)),
    "hidden_units": _AT_LEAST_ONE,
    "hidden_layers": _AT_LEAST_ONE,
}
# Sampled only under this optimizer; ignored otherwise.
_CONDITIONAL = {"momentum": "momentum", "beta1": "adam", "beta2": "adam"}
_DEFAULT_MODEL = ModelConfig()


@dataclass(frozen=True)
class SearchSpace:
    """What a trial samples. Defaults: the tuned five; the rest pinned to the seed's model."""

    optimizer: Param = Choice(OPTIMIZERS)
    lr: Param = Float(1e-5, 1e-1, log=True)
    batch_size: Param = Choice((32, 64, 128, 256, 512))
    epochs: Param = Int(1, 20)
    momentum: Param = Float(0.5, 0.99)
    weight_decay: Param = Fixed(TrainConfig.weight_decay)
    beta1: Param = Fixed(TrainConfig.beta1)
    beta2: Param = Fixed(TrainConfig.beta2)
    loss: Param = Fixed(TrainConfig.loss)
    activation: Param = Fixed(_DEFAULT_MODEL.activation)
    hidden_units: Param = Fixed(_DEFAULT_MODEL.hidden[0])
    hidden_layers: Param = Fixed(len(_DEFAULT_MODEL.hidden))

    def __post_init__(self) -> None:
        for name in RULES:
            _validate(name, getattr(self, name))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None, max_epochs: int | None = None) -> SearchSpace:
        """A space from ``mapping`` (keys as in the module doc); ``max_epochs`` sets epochs' default range."""
        if mapping is None:
            mapping = {}
        if not isinstance(mapping, Mapping):
            raise SpaceError(f"a search space must be a mapping of parameter names, not {type(mapping).__name__}")
        unknown = sorted(set(map(str, mapping)) - set(RULES))
        if unknown:
            raise SpaceError(f"unknown parameter {unknown[0]!r} (known: {', '.join(RULES)})")
        params: dict[str, Param] = {}
        if max_epochs is not None:
            if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
                raise SpaceError(f"max_epochs is {max_epochs}, but must be an integer >= 1")
            params["epochs"] = Int(1, max_epochs)
        params.update({name: _parse(name, spec) for name, spec in mapping.items()})
        return cls(**params)

    @classmethod
    def from_file(cls, path: str | Path, max_epochs: int | None = None) -> SearchSpace:
        """A space from a YAML (or JSON) file."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise SpaceError(f"cannot read space file {path}: {exc.strerror or exc}") from exc
        try:
            mapping = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise SpaceError(f"space file {path} is not valid YAML{where}") from exc
        try:
            return cls.from_mapping(mapping, max_epochs)
        except SpaceError as exc:
            raise SpaceError(f"space file {path}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """The space in its file form (``from_mapping(space.to_dict()) == space``)."""
        return {name: _unparse(getattr(self, name)) for name in RULES}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @property
    def max_epochs(self) -> int:
        return int(_largest(self.epochs))

    def baseline(self) -> dict[str, Any] | None:
        """The textbook default (Adam, lr 1e-3, batch 64, 10 epochs) as values of the sampled parameters.

        A study starts with it, so its confirmation can always compare the leaders with a
        known-good default; None when the space cannot express it (the optimizer pinned to
        SGD, say). Epochs are clipped into the space's range.
        """
        wanted = {"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 10, "weight_decay": 0.0,
                  "beta1": TrainConfig.beta1, "beta2": TrainConfig.beta2, "loss": TrainConfig.loss,
                  "activation": _DEFAULT_MODEL.activation, "hidden_units": _DEFAULT_MODEL.hidden[0],
                  "hidden_layers": len(_DEFAULT_MODEL.hidden)}
        values: dict[str, Any] = {}
        for name in RULES:
            param = getattr(self, name)
            needs = _CONDITIONAL.get(name)
            if isinstance(param, Fixed) or (needs is not None and needs != "adam"):
                continue
            value = wanted[name]
            if name == "epochs" and isinstance(param, (Int, Float)):
                value = min(max(value, param.low), param.high)
            if not _admits(param, value):
                return None
            values[name] = value
        optimizer = self.optimizer
        if isinstance(optimizer, Fixed) and optimizer.value != "adam":
            return None
        return values

    def suggest(self, trial) -> tuple[TrainConfig, ModelConfig]:
        """Sample one configuration from ``trial`` (an Optuna trial, or a FixedTrial in tests)."""
        values: dict[str, Any] = {}
        for name in RULES:
            needs = _CONDITIONAL.get(name)
            if needs is not None and values["optimizer"] != needs:
                continue
            values[name] = _suggest(trial, name, getattr(self, name))
        return configs_from_values(values)


def configs_from_values(values: Mapping[str, Any]) -> tuple[TrainConfig, ModelConfig]:
    """Training and model configurations from flat parameter values (missing ones default)."""
    train_keys = {f.name for f in dataclasses.fields(TrainConfig)}
    train = TrainConfig(**{k: v for k, v in values.items() if k in train_keys})
    units = values.get("hidden_units", _DEFAULT_MODEL.hidden[0])
    layers = values.get("hidden_layers", len(_DEFAULT_MODEL.hidden))
    model = ModelConfig(hidden=(int(units),) * int(layers), activation=values.get("activation", _DEFAULT_MODEL.activation))
    return train, model


def _admits(param: Param, value: Any) -> bool:
    if isinstance(param, Choice):
        return value in param.choices
    if isinstance(param, Int):
        return param.low <= value <= param.high and (value - param.low) % param.step == 0
    if isinstance(param, Float):
        return param.low <= value <= param.high
    return param.value == value


def _suggest(trial, name: str, param: Param) -> Any:
    if isinstance(param, Fixed):
        return param.value
    if isinstance(param, Choice):
        return trial.suggest_categorical(name, list(param.choices))
    if isinstance(param, Int):
        return trial.suggest_int(name, param.low, param.high, step=param.step, log=param.log)
    return trial.suggest_float(name, param.low, param.high, log=param.log)


def _largest(param: Param) -> Any:
    if isinstance(param, Fixed):
        return param.value
    if isinstance(param, Choice):
        return max(param.choices)
    return param.high


def _parse(name: str, spec: Any) -> Param:
    rule = RULES[name]
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, Mapping):
        return Fixed(_coerce(name, spec, rule))
    fields = set(spec)
    if "choices" in fields:
        if fields != {"choices"}:
            raise SpaceError(f"{name}: choices cannot be combined with {', '.join(sorted(fields - {'choices'}))}")
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{name}: choices is empty; give at least one value")
        return Choice(tuple(_coerce(name, c, rule) for c in choices))
    if rule.kind is str:
        raise SpaceError(f"{name}: give a value or choices, not a range")
    allowed = {"low", "high", "log"} | ({"step"} if rule.kind is int else set())
    extra = sorted(fields - allowed)
    if extra:
        raise SpaceError(f"{name}: unknown field {extra[0]!r} (use {', '.join(sorted(allowed))}, or choices)")
    if not {"low", "high"} <= fields:
        raise SpaceError(f"{name}: a range needs both low and high")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"{name}: log is {log!r}, but must be true or false")
    low, high = _coerce(name, spec["low"], rule), _coerce(name, spec["high"], rule)
    if rule.kind is int:
        step = _coerce(name, spec.get("step", 1), _AT_LEAST_ONE)
        return Int(low, high, log=log, step=step)
    return Float(low, high, log=log)


def _coerce(name: str, value: Any, rule: _Rule) -> Any:
    """``value`` as the parameter's type; YAML reads ``1e-4`` as a string, so floats are parsed."""
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise SpaceError(f"{name} is {value!r}, but must be a {rule.kind.__name__}")
    if rule.kind is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise SpaceError(f"{name} is {value!r}, but must be a number") from None
    if rule.kind is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise SpaceError(f"{name} is {value!r}, but must be an integer")
        return value
    if not isinstance(value, str):
        raise SpaceError(f"{name} is {value!r}, but must {rule.must}")
    return value


def _validate(name: str, param: Param) -> None:
    rule = RULES[name]
    if isinstance(param, Fixed):
        values = [param.value]
    elif isinstance(param, Choice):
        if not param.choices:
            raise SpaceError(f"{name}: choices is empty; give at least one value")
        values = list(param.choices)
    else:
        if param.low > param.high:
            raise SpaceError(f"{name}: low {param.low} is greater than high {param.high}")
        if param.log and param.low <= 0:
            raise SpaceError(f"{name}: a log range needs low > 0, but low is {param.low}")
        values = [param.low, param.high]
    for value in values:
        if not rule.ok(value):
            raise SpaceError(f"{name} is {value!r}, but must {rule.must}")


def _unparse(param: Param) -> Any:
    if isinstance(param, Fixed):
        return param.value
    if isinstance(param, Choice):
        return {"choices": list(param.choices)}
    spec = {"low": param.low, "high": param.high, "log": param.log}
    if isinstance(param, Int):
        spec["step"] = param.step
    return spec
