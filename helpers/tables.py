"""Tables for the reader: results summarised over seeds, one row per level."""

from __future__ import annotations

import pandas as pd

from .pruning import METHODS
from .sweep import RANKINGS, STRATEGIES

_ORDER = {name: i for i, name in enumerate((*METHODS, *STRATEGIES, *RANKINGS))}


def mean_std_table(results: pd.DataFrame, value: str, columns: str | list[str], percent: bool = True) -> pd.DataFrame:
    """``value`` by k (rows) and ``columns`` as "mean ± std" over seeds (std omitted for one seed);
    methods, strategies and rankings in the study's order rather than alphabetical."""
    stats = results.groupby(["k", *([columns] if isinstance(columns, str) else columns)])[value].agg(["mean", "std"])
    scale, unit = (100, " %") if percent else (1, "")

    def cell(row: pd.Series) -> str:
        if pd.isna(row["std"]):
            return f"{row['mean'] * scale:.2f}{unit}"
        return f"{row['mean'] * scale:.2f} ± {row['std'] * scale:.2f}{unit}"

    table = stats.apply(cell, axis=1).unstack(list(range(1, stats.index.nlevels)))
    table = table[sorted(table.columns, key=lambda c: [_ORDER.get(x, len(_ORDER))
                                                       for x in (c if isinstance(c, tuple) else (c,))])]
    return table.fillna("")


def layer_columns(results: pd.DataFrame) -> list[str]:
    """The per-layer sparsity columns (``sparsity_fc1`` ...) of pruning results, in layer order."""
    return [c for c in results if c.startswith("sparsity_")]


def per_layer_sparsity(results: pd.DataFrame, *extra: str) -> pd.DataFrame:
    """Mean over seeds, by k, of the columns ``extra`` and every layer's measured sparsity."""
    return results.groupby("k")[[*extra, *layer_columns(results)]].mean()
