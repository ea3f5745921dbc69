"""Means over seeds with their 95 % intervals, and the paired differences that decide whether one network beats another.

Every number the report gives over seeds is a mean with the half-width of its 95 % interval
(Student's t with n - 1 degrees of freedom: with 3 seeds the half-width is 2.48 standard
deviations of the mean). Two networks made from the same dense models are compared seed by
seed: the interval of the mean paired difference decides, and a "win" needs it to exclude zero;
otherwise the difference is "within noise". One seed gives no interval (NaN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
# the quantile alone: scipy.stats, which would give it too, takes a second to import in every notebook
from scipy.special import stdtrit

LEVEL = 0.95
"""Coverage of every interval the report gives."""


def half_width(values: Sequence[float]) -> float:
    """Half-width of the :data:`LEVEL` interval of the mean of ``values`` (NaN below two values)."""
    values = [float(v) for v in values if not math.isnan(v)]
    if len(values) < 2:
        return math.nan
    sem = np.std(values, ddof=1) / np.sqrt(len(values))
    return float(stdtrit(len(values) - 1, 0.5 + LEVEL / 2) * sem)


def summary(frame: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """``frame`` grouped by ``keys``: the ``mean`` of ``value``, the half-width ``ci`` of its
    :data:`LEVEL` interval, and ``n``, the number of rows (seeds) behind it."""
    grouped = frame.groupby(keys, sort=False)[value]
    return pd.DataFrame({"mean": grouped.mean(), "ci": grouped.agg(half_width), "n": grouped.size()}).reset_index()


def paired(a: pd.Series, b: pd.Series) -> dict[str, float]:
    """The mean difference ``a - b`` over the seeds both have (two series indexed by seed), the
    half-width ``ci`` of its :data:`LEVEL` interval and ``n``, the seeds compared."""
    both = a.index.intersection(b.index)
    differences = (a.loc[both] - b.loc[both]).astype(float)
    return {"difference": float(differences.mean()) if len(both) else math.nan,
            "ci": half_width(differences.tolist()), "n": int(len(both))}


def verdict(difference: float, ci: float) -> str:
    """``"higher"`` when the interval of a difference lies above zero, ``"lower"`` below it,
    ``"within noise"`` when it holds zero or there is no interval."""
    if math.isnan(ci) or math.isnan(difference):
        return "within noise"
    return "higher" if difference - ci > 0 else "lower" if difference + ci < 0 else "within noise"


def plus_minus(mean: float, ci: float, percent: bool = True) -> str:
    """``"98.06 % ± 0.12"`` (points), or without an interval ``"98.06 %"``."""
    text = f"{mean:.2%}" if percent else f"{mean:,.2f}"
    text = text.replace("%", " %")
    if math.isnan(ci):
        return text
    return f"{text} ± {ci * 100:.2f}" if percent else f"{text} ± {ci:,.2f}"
