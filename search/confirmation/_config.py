"""How much confirmation to do: ``--confirm K[,R]``."""

from __future__ import annotations

from dataclasses import dataclass

from search._errors import SearchError

# The retrains of study NAME are stored in their own study, NAME + CONFIRM_SUFFIX.
CONFIRM_SUFFIX = ":confirm"

DEFAULT_CANDIDATES = 5  # at most; fewer when they would not fit in the search's own time
DEFAULT_RESAMPLES = None  # the scheme's own: 5 folds (small data) or 3 holdouts


@dataclass(frozen=True)
class ConfirmConfig:
    """The K best configurations (and the study's baseline) raced over R resamples, then the pick
    alone on as many fresh ones for the figure to quote. ``K = 0`` skips confirmation.

    ``given``: the user named K. Otherwise K is an upper bound, trimmed so that confirmation
    costs no more than the search did (measured from the search's own trials).
    """

    candidates: int = DEFAULT_CANDIDATES
    resamples: int | None = DEFAULT_RESAMPLES
    given: bool = False
    pick: str | None = None  # a constraint the pick must meet ("params<=100000"); None: any trial

    def __post_init__(self) -> None:
        if self.pick is not None:
            from search.study._costs import Constraint

            object.__setattr__(self, "pick", Constraint.parse(self.pick).text)  # one spelling for one constraint
        if self.candidates < 0:
            raise SearchError(f"`confirm` is {self.text}, but K must be >= 0")
        if self.candidates and self.resamples is not None and self.resamples < 2:
            raise SearchError(f"`confirm` is {self.text}, but R must be >= 2 (paired comparisons need two resamples)")

    @property
    def enabled(self) -> bool:
        return self.candidates > 0

    @property
    def text(self) -> str:
        """As the user writes it: ``K,R``, ``K``, or ``0``."""
        return f"{self.candidates},{self.resamples}" if self.resamples is not None else str(self.candidates)

    @classmethod
    def parse(cls, text: str) -> ConfirmConfig:
        """``K,R``, ``K`` (R the scheme's own) or ``0`` (no confirmation)."""
        parts = [p.strip() for p in str(text).split(",")]
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            raise SearchError(f"`confirm` is {text!r}, but must be K,R (two integers, e.g. 5,3), K, or 0") from None
        if len(numbers) == 1:
            return cls(numbers[0], None, True) if numbers[0] else cls(0, None, True)
        if len(numbers) != 2:
            raise SearchError(f"`confirm` is {text!r}, but must be K,R (two integers, e.g. 5,3), K, or 0")
        return cls(numbers[0], numbers[1], True)
