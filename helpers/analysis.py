"""Conclusions computed from pruning results, set beside the original study's findings."""

from __future__ import annotations

import math

import pandas as pd

ORIGINAL_FINDINGS: dict[str, dict[str, float]] = {
    "weight": {"flat_to": 80.0, "degrades_near": 90.0},
    "unit": {"flat_to": 30.0, "degrades_near": 60.0},
}
"""What the original study reported: accuracy flat for k in [0, flat_to], degradation near
``degrades_near`` (percent). Quoted from STUDY.md, to compare with, never to copy."""

ORIGINAL_DENSE_ACCURACY = 0.9861


def mean_curve(results: pd.DataFrame, method: str) -> pd.Series:
    """Accuracy by k for ``method``, averaged over any other rows (seeds) at the same k."""
    rows = results[results["method"] == method]
    if rows.empty:
        raise ValueError(f"no results for method {method!r}; present: {sorted(results['method'].unique())}")
    return rows.groupby("k")["accuracy"].mean().sort_index()


def flat_to(curve: pd.Series, dense: float, tolerance: float = 0.01) -> float:
    """Largest k such that accuracy stays within ``tolerance`` of ``dense`` at every level up to k."""
    within = curve >= dense - tolerance
    last = curve.index[0]
    for k, ok in within.items():
        if not ok:
            break
        last = k
    return float(last)


def first_below(curve: pd.Series, level: float) -> float:
    """Smallest k whose accuracy is below ``level``; NaN if none of the tested levels is."""
    below = curve[curve < level]
    return float(below.index[0]) if len(below) else math.nan


def findings(results: pd.DataFrame, tolerance: float = 0.01) -> pd.DataFrame:
    """Per method: dense accuracy (k = 0), the largest k within ``tolerance`` of it (``flat_to``),
    the first level that drops more (``degrades_at``), the first level at which accuracy is
    below half the dense accuracy (``halves_at``), accuracy at the highest tested k, and the
    original study's figures beside them."""
    rows = []
    for method in sorted(results["method"].unique(), key=lambda m: list(ORIGINAL_FINDINGS).index(m)
                         if m in ORIGINAL_FINDINGS else len(ORIGINAL_FINDINGS)):
        curve = mean_curve(results, method)
        if curve.index[0] != 0:
            raise ValueError(f"{method} results lack the dense level k = 0, needed as the baseline")
        dense = float(curve.iloc[0])
        flat = flat_to(curve, dense, tolerance)
        later = curve[curve.index > flat]
        original = ORIGINAL_FINDINGS.get(method, {})
        rows.append({
            "method": method,
            "dense_accuracy": dense,
            "flat_to": flat,
            "degrades_at": float(later.index[0]) if len(later) else math.nan,
            "halves_at": first_below(curve, dense / 2),
            "max_k": float(curve.index[-1]),
            "accuracy_at_max_k": float(curve.iloc[-1]),
            "original_flat_to": original.get("flat_to", math.nan),
            "original_degrades_near": original.get("degrades_near", math.nan),
            "tolerance": tolerance,
        })
    return pd.DataFrame(rows)


def _pct(x: float) -> str:
    return f"{x:g} %"


def conclusions_markdown(table: pd.DataFrame) -> str:
    """Sentences stating what :func:`findings` computed; every number comes from ``table``."""
    lines = []
    by = table.set_index("method")
    for method, r in by.iterrows():
        if r.flat_to > 0:
            text = (f"- **{method.capitalize()} pruning** stays within {r.tolerance * 100:g} point of the "
                    f"dense accuracy ({r.dense_accuracy:.2%}) up to k = {_pct(r.flat_to)}")
        else:
            text = (f"- **{method.capitalize()} pruning** loses more than {r.tolerance * 100:g} point of the "
                    f"dense accuracy ({r.dense_accuracy:.2%}) at the first tested level")
        text += (f"; the first level that drops further is k = {_pct(r.degrades_at)}"
                 if not math.isnan(r.degrades_at) else "; no tested level drops further")
        text += (f"; accuracy falls below half the dense accuracy at k = {_pct(r.halves_at)}"
                 if not math.isnan(r.halves_at) else "; accuracy never falls below half the dense accuracy")
        text += f"; at k = {_pct(r.max_k)} it is {r.accuracy_at_max_k:.2%}."
        if not math.isnan(r.original_flat_to):
            verdict = ("later than" if r.flat_to > r.original_flat_to
                       else "earlier than" if r.flat_to < r.original_flat_to else "at the same level as")
            text += (f" The original study saw it flat to {_pct(r.original_flat_to)} and degrading near "
                     f"{_pct(r.original_degrades_near)}: here the flat region ends {verdict} that.")
        lines.append(text)
    if {"weight", "unit"} <= set(by.index):
        w, u = by.loc["weight"], by.loc["unit"]
        if u.flat_to < w.flat_to:
            lines.append(f"- Unit pruning loses accuracy sooner than weight pruning (flat to "
                         f"{_pct(u.flat_to)} against {_pct(w.flat_to)}), as the original study found.")
        elif u.flat_to > w.flat_to:
            lines.append(f"- Unlike the original study, unit pruning stays flat longer than weight "
                         f"pruning here ({_pct(u.flat_to)} against {_pct(w.flat_to)}).")
        else:
            lines.append(f"- Both methods stay flat to the same level ({_pct(w.flat_to)}), unlike the "
                         f"original study, where unit pruning degraded sooner.")
    return "\n".join(lines)
