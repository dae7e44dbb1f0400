"""What the parsers' help texts share: a configuration's defaults, read from its dataclass, and the storage's."""

from __future__ import annotations

import dataclasses

from search.storages import DEFAULT_STORAGE, STORAGE_ENV


def default(cls: type, name: str):
    """The default of dataclass field ``name``: help text reads it, so it is written once."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.default
    raise KeyError(name)


def storage_help() -> str:
    return f"storage URL (default: ${STORAGE_ENV}, else {DEFAULT_STORAGE})"


def given_fields(args, cls: type) -> dict:
    """The options the user gave (an argparse namespace) that are fields of ``cls``; absent ones keep the
    dataclass default."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names}
