"""The search space: what each trial samples, and the only module that calls ``trial.suggest_*``.

A space is written as a mapping, key by key, in YAML or JSON (`objectives._params` has the forms)::

    lr: {low: 1.0e-4, high: 1.0e-1, log: true}
    batch_size: {choices: [64, 128]}
    epochs: {low: 1, high: 10}
    optimizer: adam
    hidden_units: {low: 64, high: 1024, log: true}   # a model function's parameter

Training keys (`TRAIN_RULES`) configure the optimizer and the loop. Every other key is a parameter of
the model function: the built-in MLP's are `MLP_RULES`; a user's function (``--model``) takes whatever
keys its signature names. Keys not given keep their defaults (`defaults`). Momentum is sampled only
when the optimizer is ``momentum``; beta1 and beta2 only when it is ``adam``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from objectives._errors import SpaceError
from objectives._params import (
    AT_LEAST_ONE,
    NON_NEGATIVE,
    POSITIVE,
    UNIT,
    Choice,
    Fixed,
    Float,
    Int,
    Param,
    Rule,
    admits,
    clip,
    describe,
    free_rule,
    largest,
    middle,
    named,
    parse,
    short,
    unparse,
    validate,
)
from objectives._train_config import LOSSES, OPTIMIZERS, SCHEDULES, TrainConfig
from objectives.models import ACTIVATIONS, MLP

TRAIN_RULES: dict[str, Rule] = {
    "optimizer": named(OPTIMIZERS),
    "lr": POSITIVE,
    "batch_size": AT_LEAST_ONE,
    "epochs": AT_LEAST_ONE,
    "momentum": UNIT,
    "weight_decay": NON_NEGATIVE,
    "beta1": UNIT,
    "beta2": UNIT,
    "loss": named(LOSSES),
    "schedule": named(SCHEDULES),
}
MLP_RULES: dict[str, Rule] = {
    "activation": named(ACTIVATIONS),
    "hidden_units": AT_LEAST_ONE,
    "hidden_layers": AT_LEAST_ONE,
    "dropout": UNIT,
}
RULES = {**TRAIN_RULES, **MLP_RULES}
# Sampled only under this optimizer; ignored otherwise.
_CONDITIONAL = {"momentum": "momentum", "beta1": "adam", "beta2": "adam"}

# The image sets' space: the tuned five; the rest pinned to the seed's training and model.
IMAGE_DEFAULTS: dict[str, Param] = {
    "optimizer": Choice(OPTIMIZERS),
    "lr": Float(1e-5, 1e-1, log=True),
    "batch_size": Choice((32, 64, 128, 256, 512)),
    "epochs": Int(1, 20),
    "momentum": Float(0.5, 0.99),
    "weight_decay": Fixed(TrainConfig.weight_decay),
    "beta1": Fixed(TrainConfig.beta1),
    "beta2": Fixed(TrainConfig.beta2),
    "loss": Fixed(TrainConfig.loss),
    "schedule": Fixed(TrainConfig.schedule),
}
MLP_DEFAULTS: dict[str, Param] = {
    "activation": Fixed("relu"),
    "hidden_units": Fixed(512),
    "hidden_layers": Fixed(2),
    "dropout": Fixed(0.0),
}
# Tables: a plain MLP competes only when regularised (Kadra et al., "Well-tuned simple nets
# excel on tabular datasets", NeurIPS 2021): width, depth, dropout and weight decay are searched.
# At most 512 x 3: batch 16 at 1,024 x 4 trained a 5,000-row table 100x as long as the first trial.
TABLE_DEFAULTS: dict[str, Param] = {
    "optimizer": Fixed("adam"),
    "lr": Float(1e-4, 1e-2, log=True),
    "batch_size": Choice((16, 32, 64, 128, 256)),
    "schedule": Fixed("cosine"),
    "weight_decay": Float(1e-6, 1e-2, log=True),
    "hidden_units": Int(32, 512, log=True),
    "hidden_layers": Int(1, 3),
    "dropout": Float(0.0, 0.5),
}
# A small table gets more epochs: about this many rows seen by the longest trial, half by the first.
_TABLE_SAMPLES = 20_000
# What the textbook default (a study's first trial) uses, where the space can express it.
BASELINE = {
    "optimizer": "adam",
    "lr": 1e-3,
    "batch_size": 64,
    "epochs": 10,
    "weight_decay": 0.0,
    "beta1": TrainConfig.beta1,
    "beta2": TrainConfig.beta2,
    "loss": TrainConfig.loss,
    "schedule": TrainConfig.schedule,
    "activation": "relu",
    "hidden_units": 512,
    "hidden_layers": 2,
    "dropout": 0.0,
}


def defaults(
    data: str = "images", model: str = MLP, task: str = "classification", rows: int | None = None
) -> dict[str, Param]:
    """The default space of a study: ``data`` "images" or "table", its model function, task and pool size."""
    space = dict(IMAGE_DEFAULTS)
    if model == MLP:
        space.update(MLP_DEFAULTS)
    if data == "table":
        space.update({k: v for k, v in TABLE_DEFAULTS.items() if k in TRAIN_RULES or model == MLP})
        if rows:
            space["epochs"] = Int(1, max(20, min(200, math.ceil(_TABLE_SAMPLES / rows))))
    if task == "regression":
        space["loss"] = Fixed("mse")
    return space


@dataclass(frozen=True)
class SearchSpace:
    """What a trial samples: training keys first, then the model function's keys."""

    params: tuple[tuple[str, Param], ...] = tuple(defaults().items())
    model: str = MLP  # the model function whose keys the model keys are

    def __post_init__(self) -> None:
        for name, param in self.params:
            validate(name, param, self._rule(name, param))

    def _rule(self, name: str, param: Param) -> Rule:
        if name in TRAIN_RULES:
            return TRAIN_RULES[name]
        if self.model == MLP and name in MLP_RULES:
            return MLP_RULES[name]
        return free_rule(name, unparse(param))

    def __getattr__(self, name: str) -> Param:
        # space.lr, space.epochs: each parameter by its name (the dataclass's own fields come first)
        for key, param in object.__getattribute__(self, "params"):
            if key == name:
                return param
        raise AttributeError(name)

    def get(self, name: str) -> Param | None:
        return dict(self.params).get(name)

    @property
    def model_keys(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.params if name not in TRAIN_RULES)

    @property
    def shape_keys(self) -> tuple[str, ...]:
        """What trials trained as one model share (`objectives._members`): the model's keys, batch size and loss."""
        return (*self.model_keys, "batch_size", "loss")

    @classmethod
    def from_mapping(
        cls,
        mapping: Mapping[str, Any] | None,
        max_epochs: int | None = None,
        *,
        model: str = MLP,
        base: Mapping[str, Param] | None = None,
        model_keys: frozenset[str] | None = None,
    ) -> SearchSpace:
        """A space from ``mapping`` over the defaults ``base`` (the image space with the MLP when None).

        ``model_keys``: the keys the model function takes (None: any, it takes **kwargs); the
        MLP's are known. ``max_epochs`` sets epochs' range when the mapping does not.
        """
        mapping = {} if mapping is None else mapping
        if not isinstance(mapping, Mapping):
            raise SpaceError(f"a search space must be a mapping of parameter names, not {type(mapping).__name__}")
        if model == MLP:
            model_keys = frozenset(MLP_RULES)
        unknown = sorted(
            k for k in map(str, mapping) if k not in TRAIN_RULES and model_keys is not None and k not in model_keys
        )
        if unknown:
            known = [*TRAIN_RULES, *(sorted(model_keys) if model_keys is not None else [])]
            raise SpaceError(f"unknown parameter {unknown[0]!r} (known: {', '.join(known)})")
        params = dict(base if base is not None else defaults(model=model))
        if max_epochs is not None:
            if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
                raise SpaceError(f"max_epochs is {max_epochs}, but must be an integer >= 1")
            params["epochs"] = Int(1, max_epochs)
        for name, spec in mapping.items():
            name = str(name)
            rule = TRAIN_RULES.get(name) or (MLP_RULES[name] if model == MLP else free_rule(name, spec))
            params[name] = parse(name, spec, rule)
        ordered = [(k, params[k]) for k in params if k in TRAIN_RULES] + [
            (k, params[k]) for k in params if k not in TRAIN_RULES
        ]
        return cls(tuple(ordered), model)

    @classmethod
    def from_file(cls, path: str | Path, max_epochs: int | None = None, **options: Any) -> SearchSpace:
        """A space from a YAML (or JSON) file; ``options`` as `from_mapping`."""
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
            return cls.from_mapping(mapping, max_epochs, **options)
        except SpaceError as exc:
            raise SpaceError(f"space file {path}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """The space in its file form (``from_mapping(space.to_dict(), model=space.model) == space``)."""
        return {name: unparse(param) for name, param in self.params}

    @property
    def max_epochs(self) -> int:
        return int(largest(self.epochs))

    def baseline(self, model_defaults: Mapping[str, Any] | None = None, rows: int = 0) -> dict[str, Any] | None:
        """The textbook default (Adam, lr 1e-3, batch 64, 10 epochs) as values of the sampled parameters.

        A study starts with it, so its confirmation can always compare the leaders with a
        known-good default; None when the space cannot express it (the optimizer pinned to
        SGD, say). Ranges are clipped (epochs, weight decay); a model function's own keys take its defaults
        (``model_defaults``), else the middle of their range. ``rows``: a table's pool (half its rows' epochs).
        """
        wanted = (
            {**BASELINE, **(model_defaults or {})}
            if self.model == MLP
            else {**{k: v for k, v in BASELINE.items() if k in TRAIN_RULES}, **(model_defaults or {})}
        )
        if rows:
            wanted["epochs"] = max(BASELINE["epochs"], math.ceil(_TABLE_SAMPLES / 2 / rows))
        values: dict[str, Any] = {}
        for name, param in self.params:
            needs = _CONDITIONAL.get(name)
            if isinstance(param, Fixed) or (needs is not None and needs != "adam"):
                continue
            value = clip(param, wanted[name]) if name in wanted else middle(param)
            if not admits(param, value):
                return None
            values[name] = value
        optimizer = self.optimizer
        if isinstance(optimizer, Fixed) and optimizer.value != "adam":
            return None
        return values

    def admitted(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        """Another study's configuration as values this space can enqueue (keys it lacks left out, the missing
        ones left to the sampler), or why it cannot take it: a value outside a range or the choices."""
        taken: dict[str, Any] = {}
        for name, param in self.params:
            needs = _CONDITIONAL.get(name)
            if isinstance(param, Fixed) or name not in values or (needs and values.get("optimizer") != needs):
                continue
            if not admits(param, values[name]):
                return {}, f"{name}={short(values[name])} is outside this space's {name} ({describe(param)})"
            taken[name] = values[name]
        return taken, None

    def model_values(self, model_defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One value of each model key: pinned ones as pinned, the others the function's default, else
        the middle of their range (what `check_model` builds before any trial runs)."""
        values = {}
        for name in self.model_keys:
            param = self.get(name)
            default = (model_defaults or {}).get(name, BASELINE.get(name) if self.model == MLP else None)
            values[name] = default if default is not None and admits(param, default) else middle(param)
        return values

    def suggest(self, trial) -> tuple[TrainConfig, dict[str, Any]]:
        """Sample one configuration from ``trial`` (an Optuna trial, or a FixedTrial in tests):
        the training configuration, and the model function's keyword arguments."""
        values: dict[str, Any] = {}
        for name, param in self.params:
            needs = _CONDITIONAL.get(name)
            if needs is not None and values["optimizer"] != needs:
                continue
            values[name] = _suggest(trial, name, param)
        return configs_from_values(values, self.model_keys)


def configs_from_values(
    values: Mapping[str, Any], model_keys: tuple[str, ...] | None = None
) -> tuple[TrainConfig, dict[str, Any]]:
    """Training configuration and model keyword arguments from flat parameter values (missing ones default)."""
    train_keys = {f.name for f in dataclasses.fields(TrainConfig)}
    train = TrainConfig(**{k: v for k, v in values.items() if k in train_keys})
    keys = model_keys if model_keys is not None else tuple(k for k in values if k not in train_keys)
    return train, {k: values[k] for k in keys if k in values}


def _suggest(trial, name: str, param: Param) -> Any:
    if isinstance(param, Fixed):
        return param.value
    if isinstance(param, Choice):
        return trial.suggest_categorical(name, list(param.choices))
    if isinstance(param, Int):
        return trial.suggest_int(name, param.low, param.high, step=param.step, log=param.log)
    return trial.suggest_float(name, param.low, param.high, log=param.log)
