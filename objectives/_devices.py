"""Devices by name: ``auto`` picks the best this machine has (torch is imported only to look)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from objectives._errors import ObjectiveError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an asked-for device that is absent is an error."""
    if name not in DEVICES:
        raise ObjectiveError(f"device is {name!r}, but must be one of {', '.join(DEVICES)}")
    import torch

    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise ObjectiveError(f"device {name} was asked for, but this machine has none")
    return torch.device(name)
