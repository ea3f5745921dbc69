"""Tables for the reader: results summarised over seeds, one row per level."""

from __future__ import annotations

import pandas as pd

from .intervals import half_width, plus_minus
from .pruning import METHODS
from .strategies import RANKINGS, STRATEGIES

_ORDER = {name: i for i, name in enumerate((*METHODS, *STRATEGIES, *RANKINGS))}


def label(value):
    """What a reader reads for ``value``: a strategy's or ranking's label (the registry's, as in
    the prose and the figures); anything else (a method, a budget) as it is."""
    named = STRATEGIES.get(value) or RANKINGS.get(value) if isinstance(value, str) else None
    return named.label if named else value


def mean_interval_table(results: pd.DataFrame, value: str, columns: str | list[str],
                        percent: bool = True) -> pd.DataFrame:
    """``value`` by k (rows) and ``columns`` as "mean ± half-width of its 95 % interval" over
    seeds (:mod:`helpers.intervals`; no interval for one seed); methods, strategies and
    rankings in the study's order rather than alphabetical, strategies and rankings by their
    labels."""
    stats = results.groupby(["k", *([columns] if isinstance(columns, str) else columns)])[value].agg(
        ["mean", half_width])
    scale, unit = (100, " %") if percent else (1, "")

    def cell(row: pd.Series) -> str:
        if pd.isna(row["half_width"]):
            return f"{row['mean'] * scale:.2f}{unit}"
        return f"{row['mean'] * scale:.2f} ± {row['half_width'] * scale:.2f}{unit}"

    table = stats.apply(cell, axis=1).unstack(list(range(1, stats.index.nlevels)))
    table = table[sorted(table.columns, key=lambda c: [_ORDER.get(x, len(_ORDER))
                                                       for x in (c if isinstance(c, tuple) else (c,))])]
    table.index = pd.Index([level(k) for k in table.index], name="k")
    table.columns = table.columns.map(lambda c: tuple(map(label, c)) if isinstance(c, tuple) else label(c))
    return table.fillna("—")


def level(k: float) -> str:
    """A sparsity level as a reader writes it: ``92.5 %``, ``90 %``."""
    return f"{k:g} %"


def layer_columns(results: pd.DataFrame) -> list[str]:
    """The per-layer sparsity columns (``sparsity_fc1`` ...) of pruning results, in layer order."""
    return [c for c in results if c.startswith("sparsity_")]


def per_layer_sparsity(results: pd.DataFrame, *extra: str) -> pd.DataFrame:
    """Mean over seeds, by k, of the columns ``extra`` and every layer's measured sparsity."""
    return results.groupby("k")[[*extra, *layer_columns(results)]].mean()


def findings_table(findings: pd.DataFrame) -> pd.DataFrame:
    """The computed findings (:func:`helpers.analysis.findings`) as a reader reads them: one row
    per method and strategy, accuracies and levels in percent, a dash where a finding does not
    apply (a curve that never halves, a strategy the original study did not run)."""

    def pct(x: float, digits: int) -> str:
        return "—" if pd.isna(x) else f"{x * 100:.{digits}f} %"

    def lvl(k: float) -> str:
        return "—" if pd.isna(k) else level(k)

    return pd.DataFrame({
        "method": findings["method"],
        "strategy": findings["strategy"].map(label),
        "retraining epochs": findings["epochs"],
        "dense accuracy": findings["dense_accuracy"].map(lambda x: pct(x, 2)),
        "flat (within tolerance) up to": findings["flat_to"].map(lvl),
        "first level below that": findings["degrades_at"].map(lvl),
        "below half the dense accuracy from": findings["halves_at"].map(lvl),
        "accuracy at the highest level": [f"{pct(a, 2)} at {level(k)}" for a, k in
                                          zip(findings["accuracy_at_max_k"], findings["max_k"])],
        "original study: flat to": findings["original_flat_to"].map(lvl),
    }).set_index(["method", "strategy"])


def tuning_table(tuning: pd.DataFrame) -> pd.DataFrame:
    """Validation accuracy of every (strategy, budget, learning rate) tried, one column per tuned
    level; the one-shot row (no retraining) for reference."""
    rows = tuning.assign(lr=[f"{lr:g}" if lr else "–" for lr in tuning["lr"]], strategy=tuning["strategy"].map(label))
    table = rows.pivot_table(index=["strategy", "epochs", "lr"], columns="k", values="val_accuracy", sort=False)
    table = table[sorted(table.columns)]
    table.columns = [f"k = {level(k)}" for k in table.columns]
    table.index.names = ["strategy", "epochs", "learning rate"]
    return table


def equal_cost_table(budgets: pd.DataFrame) -> pd.DataFrame:
    """The equal-cost conclusions (:func:`helpers.comparison.equal_cost`) for reading: one row per
    budget, test accuracies with their 95 % interval, words instead of missing values."""
    rows = []
    for _, r in budgets.iterrows():
        budget = (f"≤ {r.budget:,.0f} weights (1/{r.factor})" if r.budget_kind == "weights"
                  else f"≥ {r.factor}× measured speed-up")
        fits = isinstance(r.get("best"), str)
        rows.append({"budget": budget,
                     "first on validation": f"{r.best}, k = {level(r.k)}" if fits else "nothing fits",
                     "test accuracy": plus_minus(r.accuracy, r.ci) if fits else "–",
                     "weights": f"{r.remaining_weights:,.0f}" if fits else "–",
                     "next on validation": (f"{r.runner_up}, k = {level(r.runner_up_k)}: {r.runner_up_accuracy:.2%}"
                                            if isinstance(r.get("runner_up"), str) else "–"),
                     "paired difference": (f"{plus_minus(r.difference, r.difference_ci).replace(' %', ' points')} "
                                           f"({r.verdict})" if isinstance(r.get("runner_up"), str) else "–")})
    return pd.DataFrame(rows).set_index("budget")


def scratch_table(control: pd.DataFrame) -> pd.DataFrame:
    """Pruned against the controls trained from scratch (:func:`helpers.comparison.against_scratch`)
    for reading: test accuracies with their 95 % intervals, and the paired difference."""
    return pd.DataFrame({
        "method": control["method"],
        "k": [level(k) for k in control["k"]],
        "control": control["control"].map(label),
        "pruned, first on validation": [f"{label(s)} ({e} ep.): {plus_minus(a, c)}" for s, e, a, c in
                                        zip(control.pruned_strategy, control.pruned_epochs, control.pruned_accuracy,
                                            control.pruned_ci)],
        "control's accuracy": [f"{e} ep.: {plus_minus(a, c)}" for e, a, c in
                               zip(control.scratch_epochs, control.scratch_accuracy, control.scratch_ci)],
        "paired difference": [plus_minus(d, c).replace(" %", " points") for d, c in
                              zip(control["difference"], control["difference_ci"])],
        "verdict": control["verdict"].map({"pruning": "pruning better", "control": "control better",
                                           "tie": "within noise"}),
    }).set_index(["method", "k", "control"])
