"""Conclusions across methods and strategies: at equal cost, and against the controls."""

from __future__ import annotations

import math

import pandas as pd

from .analysis import dense_rows
from .pruning import METHODS
from .strategies import LAYER, SCRATCH, STRATEGIES, strategy as registered
from .tables import level

WEIGHT_FACTORS: tuple[int, ...] = (10, 25, 50, 100)
"""Budgets of the equal-cost comparison: at most 1/10, 1/25, ... of the dense network's weights."""

SPEEDUP_FACTORS: tuple[int, ...] = (2, 5, 10)
"""Budgets of the equal-cost comparison: at least this measured speed-up over the dense network."""


def candidates(results: pd.DataFrame, efficiency: pd.DataFrame | None = None, batch: int = 256) -> pd.DataFrame:
    """Every pruned network of ``results`` (per-layer ranking) as a point of the equal-cost
    comparison: one row per method, strategy, retraining budget (``epochs``) and level, with
    the mean and std over seeds of ``accuracy``, the mean ``remaining_weights`` and ``macs``, the
    number of seeds, a ``label`` naming it, and, with ``efficiency`` (long form), the
    ``measured_speedup`` of its compact form at ``batch`` (which depends on method and level)."""
    rows = results[(results["ranking"] == LAYER.name) & (results["k"] > 0)]
    keys = ["method", "strategy", "epochs", "k"]
    points = rows.groupby(keys, as_index=False).agg(
        accuracy=("accuracy", "mean"), std=("accuracy", "std"), seeds=("accuracy", "size"),
        remaining_weights=("remaining_weights", "mean"), macs=("macs", "mean"))
    # the rounds of one iterative run are one candidate: its levels differ in epochs as in k
    per_round = points.groupby(["method", "strategy"])["epochs"].min().astype(int).to_dict()
    points["label"] = [f"{m} pruning, {registered(s).described(e, per_round[m, s])}"
                       for m, s, e in zip(points["method"], points["strategy"], points["epochs"])]
    order = {name: i for i, name in enumerate((*METHODS, *STRATEGIES))}  # the report's order, not the alphabet's
    points = points.sort_values(["method", "strategy", "epochs", "k"], ignore_index=True,
                                key=lambda c: c.map(order) if c.name in ("method", "strategy") else c)
    if efficiency is not None:
        speed = efficiency.loc[efficiency["batch"] == batch, ["method", "k", "measured_speedup"]]
        points = points.merge(speed, on=["method", "k"], how="left")
    return points


def equal_cost(results: pd.DataFrame, efficiency: pd.DataFrame, batch: int = 256) -> pd.DataFrame:
    """The equal-cost conclusions: for each budget, the most accurate pruned network that fits
    it and the best of the others (runner-up, of another method, strategy or budget).

    Budgets are ``weights`` (at most ``dense weights / f`` remaining weights, f in
    :data:`WEIGHT_FACTORS`) and ``latency`` (a measured speed-up of the compact form at
    ``batch`` of at least f, f in :data:`SPEEDUP_FACTORS`). Within one candidate (method,
    strategy, budget) the best of its fitting levels counts. Returns one row per budget:
    ``budget_kind``, ``factor``, ``budget`` (weights, or speed-up), ``best``, ``method``,
    ``strategy``, ``epochs``, ``k``, ``accuracy``, ``std``, ``remaining_weights``,
    ``measured_speedup``, ``runner_up``, ``runner_up_accuracy``, ``runner_up_k``; ``best`` is
    empty when nothing fits.
    """
    points = candidates(results, efficiency, batch)
    dense = dense_rows(results)["remaining_weights"].mean()
    budgets = [("weights", f, dense / f, points["remaining_weights"] <= dense / f) for f in WEIGHT_FACTORS]
    budgets += [("latency", f, float(f), points["measured_speedup"] >= f) for f in SPEEDUP_FACTORS]
    rows = []
    for kind, factor, budget, fits in budgets:
        best = (points[fits].sort_values(["accuracy", "remaining_weights"], ascending=[False, True])
                .drop_duplicates("label"))
        row = {"budget_kind": kind, "factor": factor, "budget": budget}
        if len(best):
            top = best.iloc[0]
            row.update(best=top["label"], method=top["method"], strategy=top["strategy"], epochs=int(top["epochs"]),
                       k=top["k"], accuracy=top["accuracy"], std=top["std"],
                       remaining_weights=top["remaining_weights"], measured_speedup=top["measured_speedup"])
        if len(best) > 1:
            second = best.iloc[1]
            row.update(runner_up=second["label"], runner_up_accuracy=second["accuracy"], runner_up_k=second["k"])
        rows.append(row)
    return pd.DataFrame(rows)


def equal_cost_markdown(table: pd.DataFrame) -> str:
    """One sentence per budget of :func:`equal_cost`; every number comes from ``table``."""
    lines = []
    for _, r in table.iterrows():
        budget = (f"With at most {r.budget:,.0f} weights (1/{r.factor} of the dense network)"
                  if r.budget_kind == "weights" else f"At a measured speed-up of at least {r.factor}x (batch 256)")
        if not isinstance(r.get("best"), str):
            lines.append(f"- {budget}, no pruned network of this run fits.")
            continue
        text = (f"- {budget}, the most accurate is **{r.best}** at k = {level(r.k)}: {r.accuracy:.2%} "
                f"± {0 if math.isnan(r['std']) else r['std']:.2%} with {r.remaining_weights:,.0f} weights")
        if isinstance(r.get("runner_up"), str):
            text += (f"; next comes {r.runner_up} at k = {level(r.runner_up_k)} "
                     f"({r.runner_up_accuracy:.2%}, {(r.accuracy - r.runner_up_accuracy) * 100:+.2f} points behind)")
        lines.append(text + ".")
    return "\n".join(lines)


def against_scratch(results: pd.DataFrame) -> pd.DataFrame:
    """Pruned networks against the scratch control at every level where it ran: per method and
    level, the scratch control's accuracy (mean, std over seeds), the best pruned strategy
    there (highest mean over its budgets) with its mean and std, their ``difference`` and the
    ``verdict``: ``pruning`` when the pruned mean is above the scratch mean by more than the
    larger of the two stds, ``control`` in the opposite case, ``tie`` otherwise."""
    rows = results[results["ranking"] == LAYER.name]
    stats = (rows.groupby(["method", "strategy", "epochs", "k"], as_index=False)["accuracy"]
             .agg(["mean", "std", "size"]))
    out = []
    for _, control in stats[stats["strategy"] == SCRATCH.name].iterrows():
        pruned = stats[(stats["method"] == control["method"]) & (stats["k"] == control["k"])
                       & stats["strategy"].map(lambda s: registered(s).retrains)]
        if pruned.empty:
            continue
        best = pruned.sort_values("mean", ascending=False).iloc[0]
        margin = max(best["std"], control["std"]) if not math.isnan(best["std"]) else 0.0
        difference = best["mean"] - control["mean"]
        out.append({"method": control["method"], "k": control["k"], "scratch_epochs": int(control["epochs"]),
                    "scratch_accuracy": control["mean"], "scratch_std": control["std"],
                    "pruned_strategy": best["strategy"], "pruned_epochs": int(best["epochs"]),
                    "pruned_accuracy": best["mean"], "pruned_std": best["std"], "difference": difference,
                    "seeds": int(control["size"]),
                    "verdict": "pruning" if difference > margin else "control" if -difference > margin else "tie"})
    return pd.DataFrame(out)


def against_scratch_markdown(table: pd.DataFrame) -> str:
    """Sentences stating where pruning beats the scratch control, from :func:`against_scratch`."""
    if table.empty:
        return "This run trained no scratch control (its strategies or control levels leave it out)."
    lines = []
    for verdict, words in (("pruning", "pruning and retraining beats training the same network from scratch"),
                           ("control", "training from scratch beats pruning"),
                           ("tie", "the two are within the spread over seeds")):
        hits = table[table["verdict"] == verdict]
        for method, group in hits.groupby("method", sort=False):
            where = ", ".join(f"k = {level(k)} ({d * 100:+.2f} points)" for k, d in zip(group.k, group.difference))
            lines.append(f"- {method.capitalize()} pruning: {words} at {where}.")
    return "\n".join(lines)


def budget_table(results: pd.DataFrame, efficiency: pd.DataFrame, batch: int = 256) -> pd.DataFrame:
    """For every method, strategy and budget of retraining (rows, :func:`candidates` labels),
    the best mean test accuracy among its levels that fit each cost budget (columns): at most
    1/f of the dense weights (f in :data:`WEIGHT_FACTORS`) and a measured speed-up of at least f
    (f in :data:`SPEEDUP_FACTORS`) at ``batch``; NaN where no level fits."""
    points = candidates(results, efficiency, batch)
    dense = dense_rows(results)["remaining_weights"].mean()
    columns = {f"1/{f} of the weights": points["remaining_weights"] <= dense / f for f in WEIGHT_FACTORS}
    columns.update({f"{f}× faster": points["measured_speedup"] >= f for f in SPEEDUP_FACTORS})
    table = pd.DataFrame({name: points["accuracy"].where(fits).groupby(points["label"], sort=False).max()
                          for name, fits in columns.items()})
    table.index.name = None
    return table


def answer_markdown(results: pd.DataFrame, efficiency: pd.DataFrame, tolerance: float = 0.01,
                    batch: int = 256) -> str:
    """The study's answer in a few sentences, each computed from ``results`` and ``efficiency``:
    how few weights, and how large a measured speed-up, keep accuracy within ``tolerance`` of
    the dense network, by which method; and whether pruning beats training from scratch."""
    points = candidates(results, efficiency, batch)
    dense = dense_rows(results)
    dense, weights = dense["accuracy"].mean(), dense["remaining_weights"].mean()
    good = points[points["accuracy"] >= dense - tolerance]
    lines = [f"The dense network reaches {dense:.2%} ({weights:,.0f} weights)."]
    if good.empty:
        lines.append(f"No pruned network of this run stays within {tolerance * 100:g} point of it.")
    else:
        few = good.sort_values(["remaining_weights", "accuracy"], ascending=[True, False]).iloc[0]
        lines.append(f"Within {tolerance * 100:g} point of it, the fewest weights are kept by **{few.label}** at "
                     f"k = {level(few.k)}: {few.remaining_weights:,.0f} weights "
                     f"({weights / few.remaining_weights:.0f}× fewer), {few.accuracy:.2%}.")
        fast = good.dropna(subset=["measured_speedup"]).sort_values(["measured_speedup", "accuracy"],
                                                                      ascending=[False, False])
        if len(fast):
            top = fast.iloc[0]
            lines.append(f"The largest measured speed-up within that point is **{top.measured_speedup:.1f}×** "
                         f"(batch {batch}), by **{top.label}** at k = {level(top.k)} ({top.accuracy:.2%}).")
    control = against_scratch(results)
    if len(control):
        wins = control[control["verdict"] == "pruning"]
        losses = control[control["verdict"] == "control"]
        text = "Against the same network trained from scratch, pruning "
        text += (f"wins at {_at(wins)}" if len(wins) else "wins nowhere")
        text += (f", and loses at {_at(losses)}" if len(losses) else "")
        ties = control[control["verdict"] == "tie"]
        text += (f"; at {_at(ties)} the two are within the spread over seeds" if len(ties) else "")
        lines.append(text + ".")
    return " ".join(lines)


def _at(table: pd.DataFrame) -> str:
    """``unit k = 90 %, weight k = 99 %`` for the rows of ``table``."""
    return ", ".join(f"{m} k = {level(k)}" for m, k in zip(table["method"], table["k"]))
