"""The preprocessing of a table for a network: fitted on training rows only, saved with the model.

Numeric columns: a gap takes the training rows' median, then each column is standardised
with the training rows' mean and std; with ``bins``, each column with more than two values is
also given as its piecewise-linear encoding over quantile bins of the training rows (Gorishniy
et al., "On Embeddings for Numerical Features in Tabular Deep Learning", NeurIPS 2022): one
feature a bin, 0 below it, 1 above it, the position inside it in between. A network then bends
its response to a column where the rows are, as a tree's splits do: an identifier-like column
(a school's number) or a skewed one (an income) needs no transform chosen by hand. Text
columns: one-hot, with the categories seen in the training rows (an unseen one is encoded as
none of them). A regression target is standardised with the training rows' mean and std.
`search predict` applies the same encoder, so a row is encoded the same way at training and at
prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from objectives.data._tables import Table


@dataclass(frozen=True)
class TableEncoder:
    """Medians, means and stds of numeric columns, categories of text columns, the class names."""

    numeric_names: tuple[str, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]
    text_names: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    classes: tuple[str, ...]
    medians: tuple[float, ...] = ()  # a gap's fill; () (models saved before medians): the mean
    target_mean: float = 0.0  # regression: the target's standardisation
    target_std: float = 1.0
    # Each numeric column's bin edges (its training rows' quantiles, distinct); () where it has none.
    # () for all (models saved before bins, or bins 0): the standardised values alone.
    edges: tuple[tuple[float, ...], ...] = ()

    @classmethod
    def fit(cls, table: Table, bins: int = 0) -> TableEncoder:
        """The preprocessing of ``table``'s rows (its training rows); ``bins``: quantile bins a numeric column."""
        import numpy as np

        width = len(table.numeric_names)
        observed = ~np.isnan(table.numeric) if table.rows else np.zeros((0, width), dtype=bool)
        # nanmedian of an all-gap column would warn and give NaN; such a column is refused on reading.
        medians = np.array(
            [np.median(table.numeric[observed[:, j], j]) if observed[:, j].any() else 0.0 for j in range(width)]
        )
        filled = np.where(observed, table.numeric, medians) if table.rows else table.numeric
        means = filled.mean(axis=0) if table.rows else np.zeros(width)
        stds = filled.std(axis=0) if table.rows else np.ones(width)
        stds = np.where(stds > 0, stds, 1.0)  # a constant column stays 0, not NaN
        categories = tuple(tuple(sorted(set(table.text[:, j].tolist()))) for j in range(len(table.text_names)))
        target_mean, target_std = 0.0, 1.0
        if not table.classes and table.rows:  # regression
            target_mean, target_std = float(table.labels.mean()), float(table.labels.std()) or 1.0
        return cls(
            table.numeric_names,
            tuple(map(float, means)),
            tuple(map(float, stds)),
            table.text_names,
            categories,
            table.classes,
            tuple(map(float, medians)),
            target_mean,
            target_std,
            _edges(filled, bins) if bins and table.rows else (),
        )

    @property
    def width(self) -> int:
        bins = sum(max(0, len(e) - 1) for e in self.edges)
        return len(self.numeric_names) + bins + sum(len(c) for c in self.categories)

    def fill(self, numeric) -> tuple[Any, int]:
        """``numeric`` with each gap taking its column's training median; how many gaps there were."""
        import numpy as np

        gaps = np.isnan(numeric)
        fills = np.asarray(self.medians or self.means, dtype=np.float64)
        return np.where(gaps, fills, numeric), int(gaps.sum())

    def transform(self, numeric, text) -> tuple[Any, int]:
        """float32 features [n, width], and how many text values were categories it never saw."""
        import numpy as np

        n = numeric.shape[0]
        out = np.zeros((n, self.width), dtype=np.float32)
        k = len(self.numeric_names)
        if k:
            numeric, _ = self.fill(numeric)
            out[:, :k] = (numeric - np.asarray(self.means)) / np.asarray(self.stds)
        start = k
        for j, edges in enumerate(self.edges):
            if len(edges) < 2:
                continue
            low, high = np.asarray(edges[:-1]), np.asarray(edges[1:])
            out[:, start : start + len(low)] = np.clip((numeric[:, j : j + 1] - low) / (high - low), 0.0, 1.0)
            start += len(low)
        unseen = 0
        for j, cats in enumerate(self.categories):
            index = {c: i for i, c in enumerate(cats)}
            codes = np.fromiter((index.get(str(v), -1) for v in text[:, j].tolist()), dtype=np.int64, count=n)
            known = codes >= 0
            unseen += int((~known).sum())  # an unseen category is encoded as none of them
            out[np.nonzero(known)[0], start + codes[known]] = 1.0
            start += len(cats)
        return out, unseen

    def to_dict(self) -> dict[str, Any]:
        return {
            "numeric": list(self.numeric_names),
            "means": list(self.means),
            "stds": list(self.stds),
            "medians": list(self.medians),
            "text": list(self.text_names),
            "categories": [list(c) for c in self.categories],
            "classes": list(self.classes),
            "target_mean": self.target_mean,
            "target_std": self.target_std,
            **({"edges": [list(e) for e in self.edges]} if self.edges else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableEncoder:
        return cls(
            tuple(d["numeric"]),
            tuple(d["means"]),
            tuple(d["stds"]),
            tuple(d["text"]),
            tuple(tuple(c) for c in d["categories"]),
            tuple(d["classes"]),
            tuple(d.get("medians") or ()),
            float(d.get("target_mean", 0.0)),
            float(d.get("target_std", 1.0)),
            tuple(tuple(map(float, e)) for e in d.get("edges") or ()),
        )


def _edges(filled, bins: int) -> tuple[tuple[float, ...], ...]:
    """Each column's distinct quantiles at 0, 1/bins, ..., 1 of its rows; () for a column of two values or
    fewer (a flag: its standardised value says all there is)."""
    import numpy as np

    out = []
    for column in filled.T:
        edges = np.unique(np.quantile(column, np.linspace(0.0, 1.0, bins + 1)))
        out.append(tuple(map(float, edges)) if len(np.unique(column)) > 2 and len(edges) > 2 else ())
    return tuple(out)
