"""The preprocessing of a table for a network: fitted on training rows, saved with the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from objectives.data._tables import Table

MISSING_CATEGORY = "(missing)"


@dataclass(frozen=True)
class TableEncoder:
    """Numeric columns standardised, text columns one-hot: fitted on training rows, saved with the model."""

    numeric_names: tuple[str, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]
    text_names: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    classes: tuple[str, ...]

    @classmethod
    def fit(cls, table: Table) -> TableEncoder:
        import numpy as np

        means = table.numeric.mean(axis=0) if table.rows else np.zeros(len(table.numeric_names))
        stds = table.numeric.std(axis=0) if table.rows else np.ones(len(table.numeric_names))
        stds = np.where(stds > 0, stds, 1.0)  # a constant column stays 0, not NaN
        categories = tuple(tuple(sorted(set(table.text[:, j].tolist()))) for j in range(len(table.text_names)))
        return cls(table.numeric_names, tuple(map(float, means)), tuple(map(float, stds)), table.text_names, categories, table.classes)

    @property
    def width(self) -> int:
        return len(self.numeric_names) + sum(len(c) for c in self.categories)

    def transform(self, numeric, text) -> tuple[Any, int]:
        """float32 features [n, width], and how many text values were categories it never saw."""
        import numpy as np

        n = numeric.shape[0]
        out = np.zeros((n, self.width), dtype=np.float32)
        k = len(self.numeric_names)
        if k:
            out[:, :k] = (numeric - np.asarray(self.means)) / np.asarray(self.stds)
        unseen, start = 0, k
        for j, cats in enumerate(self.categories):
            index = {c: i for i, c in enumerate(cats)}
            codes = np.fromiter((index.get(str(v), -1) for v in text[:, j].tolist()), dtype=np.int64, count=n)
            known = codes >= 0
            unseen += int((~known).sum())  # an unseen category is encoded as none of them
            out[np.nonzero(known)[0], start + codes[known]] = 1.0
            start += len(cats)
        return out, unseen

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": list(self.numeric_names), "means": list(self.means), "stds": list(self.stds),
                "text": list(self.text_names), "categories": [list(c) for c in self.categories], "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableEncoder:
        return cls(tuple(d["numeric"]), tuple(d["means"]), tuple(d["stds"]), tuple(d["text"]),
                   tuple(tuple(c) for c in d["categories"]), tuple(d["classes"]))
