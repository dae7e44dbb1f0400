"""One parameter of a search space: a range, a set of choices or a pinned value, read from YAML and checked.

A parameter is written in a space file as::

    lr: {low: 1.0e-4, high: 1.0e-1, log: true}   # a float range (ints too; {step: ...} for ints)
    batch_size: {choices: [64, 128]}             # a categorical (a plain list works too)
    optimizer: adam                              # a scalar pins the parameter

Known keys have a `Rule` (their type and the values they may take); a model function's
own keys take their type from the values written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from objectives._errors import SpaceError


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


Param = Float | Int | Choice | Fixed


@dataclass(frozen=True)
class Rule:
    """A parameter's type and the values it may take."""

    kind: type
    ok: Callable[[Any], bool]
    must: str


def named(names: tuple[str, ...]) -> Rule:
    return Rule(str, lambda v: v in names, f"be one of {', '.join(names)}")


POSITIVE = Rule(float, lambda v: v > 0, "be > 0")
AT_LEAST_ONE = Rule(int, lambda v: v >= 1, "be >= 1")
UNIT = Rule(float, lambda v: 0 <= v < 1, "be >= 0 and < 1")
NON_NEGATIVE = Rule(float, lambda v: v >= 0, "be >= 0")


def free_rule(name: str, spec: Any) -> Rule:
    """The rule of a model function's own key: the type its written values have (ints, numbers, text, flags)."""
    values = (
        spec
        if isinstance(spec, list)
        else spec.get("choices", [spec.get("low"), spec.get("high")])
        if isinstance(spec, Mapping)
        else [spec]
    )
    values = [v for v in values if v is not None]
    if values and all(isinstance(v, bool) for v in values):
        return Rule(bool, lambda v: True, "be true or false")
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return Rule(int, lambda v: True, "be an integer")
    if values and all(isinstance(v, (int, float, str)) and not isinstance(v, bool) and _is_number(v) for v in values):
        return Rule(float, lambda v: True, "be a number")
    return Rule(str, lambda v: True, "be text")


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def parse(name: str, spec: Any, rule: Rule) -> Param:
    """A parameter from its file form (a range mapping, choices, or a scalar)."""
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, Mapping):
        return Fixed(coerce(name, spec, rule))
    fields = set(spec)
    if "choices" in fields:
        if fields != {"choices"}:
            raise SpaceError(f"{name}: choices cannot be combined with {', '.join(sorted(fields - {'choices'}))}")
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{name}: choices is empty; give at least one value")
        return Choice(tuple(coerce(name, c, rule) for c in choices))
    if rule.kind in (str, bool):
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
    low, high = coerce(name, spec["low"], rule), coerce(name, spec["high"], rule)
    if rule.kind is int:
        step = coerce(name, spec.get("step", 1), AT_LEAST_ONE)
        return Int(low, high, log=log, step=step)
    return Float(low, high, log=log)


def coerce(name: str, value: Any, rule: Rule) -> Any:
    """``value`` as the parameter's type; YAML reads ``1e-4`` as a string, so floats are parsed."""
    if rule.kind is bool:
        if not isinstance(value, bool):
            raise SpaceError(f"{name} is {value!r}, but must be true or false")
        return value
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


def validate(name: str, param: Param, rule: Rule) -> None:
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


def unparse(param: Param) -> Any:
    """The file form of a parameter (``parse(name, unparse(p), rule) == p``)."""
    if isinstance(param, Fixed):
        return param.value
    if isinstance(param, Choice):
        return {"choices": list(param.choices)}
    spec = {"low": param.low, "high": param.high, "log": param.log}
    if isinstance(param, Int):
        spec["step"] = param.step
    return spec


def admits(param: Param, value: Any) -> bool:
    if isinstance(param, Choice):
        return value in param.choices
    if isinstance(param, Int):
        return param.low <= value <= param.high and (value - param.low) % param.step == 0
    if isinstance(param, Float):
        return param.low <= value <= param.high
    return param.value == value


def clip(param: Param, value: Any) -> Any:
    """``value`` moved into a range's bounds (a choice or a pinned value is left as it is)."""
    if isinstance(param, (Int, Float)) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return type(param.low)(min(max(value, param.low), param.high))
    return value


def largest(param: Param) -> Any:
    if isinstance(param, Fixed):
        return param.value
    if isinstance(param, Choice):
        return max(param.choices)
    return param.high


def short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else repr(value)


def describe(param: Param) -> str:
    if isinstance(param, Choice):
        return "one of " + ", ".join(map(short, param.choices))
    return f"{short(param.low)} to {short(param.high)}"


def middle(param: Param) -> Any:
    if isinstance(param, Choice):
        return param.choices[0]
    if isinstance(param, Int):
        mid = math.sqrt(param.low * param.high) if param.log else (param.low + param.high) / 2
        return param.low + round((mid - param.low) / param.step) * param.step
    if isinstance(param, Float):
        return math.sqrt(param.low * param.high) if param.log else (param.low + param.high) / 2
    return param.value
