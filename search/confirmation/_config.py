"""How much confirmation to do: ``--confirm K,R``."""

from __future__ import annotations

from dataclasses import dataclass

from search._errors import SearchError

DEFAULT_CANDIDATES = 5
DEFAULT_RESAMPLES = 3


@dataclass(frozen=True)
class ConfirmConfig:
    """How many leaders to confirm, on how many resamples (``--confirm K,R``; K = 0 skips)."""

    candidates: int = DEFAULT_CANDIDATES
    resamples: int = DEFAULT_RESAMPLES

    def __post_init__(self) -> None:
        if self.candidates < 0:
            raise SearchError(f"--confirm is {self.candidates},{self.resamples}, but K must be >= 0")
        if self.candidates and self.resamples < 1:
            raise SearchError(f"--confirm is {self.candidates},{self.resamples}, but R must be >= 1")

    @property
    def enabled(self) -> bool:
        return self.candidates > 0

    @classmethod
    def parse(cls, text: str) -> ConfirmConfig:
        """``K,R``, ``K`` (R keeps its default) or ``0`` (no confirmation)."""
        parts = [p.strip() for p in str(text).split(",")]
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            raise SearchError(f"--confirm is {text!r}, but must be K,R (two integers, e.g. 5,3) or 0") from None
        if len(numbers) == 1:
            return cls(numbers[0]) if numbers[0] else cls(0, 0)
        if len(numbers) != 2:
            raise SearchError(f"--confirm is {text!r}, but must be K,R (two integers, e.g. 5,3) or 0")
        return cls(*numbers)
