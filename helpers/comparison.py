"""Conclusions across methods and strategies: at equal cost, and against the controls."""

from __future__ import annotations

import pandas as pd

from .analysis import dense_rows
from .intervals import half_width, paired, plus_minus, verdict
from .pruning import METHODS
from .strategies import LAYER, STRATEGIES, strategy as registered
from .tables import level

WEIGHT_FACTORS: tuple[int, ...] = (10, 25, 50, 100)
"""Budgets of the equal-cost comparison: at most 1/10, 1/25, ... of the dense network's weights."""

SPEEDUP_FACTORS: tuple[int, ...] = (2, 5, 10)
"""Budgets of the equal-cost comparison: at least this measured speed-up over the dense network."""


def candidates(results: pd.DataFrame, efficiency: pd.DataFrame | None = None, batch: int = 256) -> pd.DataFrame:
    """Every pruned network of ``results`` (per-layer ranking) as a point of the equal-cost
    comparison: one row per method, strategy, retraining budget (``epochs``) and level, with
    ``val_accuracy`` (mean over seeds: what every choice is made on), the test ``accuracy``
    (mean) and ``ci`` (half-width of its 95 % interval, :mod:`helpers.intervals`), the number of
    ``seeds``, ``remaining_weights`` (the most over seeds: a network counts for a budget when it
    is under it in every seed), ``macs`` and, when ``results`` has them, ``train_macs`` (mean:
    :func:`with_training_compute`), a ``label`` naming it, and, with ``efficiency``
    (long form), the ``measured_speedup`` of its compact form at ``batch``."""
    rows = results[(results["ranking"] == LAYER.name) & (results["k"] > 0)]
    keys = ["method", "strategy", "epochs", "k"]
    extra = {"train_macs": ("train_macs", "mean")} if "train_macs" in rows else {}
    points = rows.groupby(keys, as_index=False).agg(
        val_accuracy=("val_accuracy", "mean"), accuracy=("accuracy", "mean"), ci=("accuracy", half_width),
        seeds=("accuracy", "size"), remaining_weights=("remaining_weights", "max"), macs=("macs", "max"), **extra)
    # the rounds of one iterative run are one candidate: its levels differ in epochs as in k;
    # the control that follows a run's rounds trains for one of them
    per_round = points.groupby(["method", "strategy"])["epochs"].min().astype(int).to_dict()
    per_round.update({(m, s): per_round[m, registered(s).follows] for m, s in list(per_round)
                      if (m, registered(s).follows) in per_round})
    points["label"] = [f"{m} pruning, {registered(s).described(e, per_round[m, s])}"
                       for m, s, e in zip(points["method"], points["strategy"], points["epochs"])]
    order = {name: i for i, name in enumerate((*METHODS, *STRATEGIES))}  # the report's order, not the alphabet's
    points = points.sort_values(["method", "strategy", "epochs", "k"], ignore_index=True,
                                key=lambda c: c.map(order) if c.name in ("method", "strategy") else c)
    if efficiency is not None:
        speed = efficiency.loc[efficiency["batch"] == batch, ["method", "k", "measured_speedup"]]
        points = points.merge(speed, on=["method", "k"], how="left")
    return points


def _by_seed(results: pd.DataFrame, point: pd.Series) -> pd.Series:
    """Test accuracy of the network ``point`` names, per seed."""
    rows = results[(results["ranking"] == LAYER.name) & (results["method"] == point["method"])
                   & (results["strategy"] == point["strategy"]) & (results["epochs"] == point["epochs"])
                   & (results["k"] == point["k"])]
    return rows.set_index("seed")["accuracy"]


def _chosen(points: pd.DataFrame) -> pd.DataFrame:
    """``points`` best first as validation ranks them (then fewer weights), one per label."""
    return points.sort_values(["val_accuracy", "remaining_weights"], ascending=[False, True]).drop_duplicates("label")


def equal_cost(results: pd.DataFrame, efficiency: pd.DataFrame, batch: int = 256) -> pd.DataFrame:
    """The equal-cost conclusions: for each budget, the pruned network that fits it and that
    validation ranks first, and the one it ranks next (of another method, strategy or budget),
    with their test accuracies and the paired difference between them on test.

    Budgets are ``weights`` (at most ``dense weights / f`` remaining weights in every seed, f in
    :data:`WEIGHT_FACTORS`) and ``latency`` (a measured speed-up of the compact form at
    ``batch`` of at least f, f in :data:`SPEEDUP_FACTORS`). Within one candidate (method,
    strategy, budget) the level validation ranks first counts. Returns one row per budget:
    ``budget_kind``, ``factor``, ``budget``, ``best``, ``method``, ``strategy``, ``epochs``,
    ``k``, ``val_accuracy``, ``accuracy``, ``ci``, ``remaining_weights``, ``measured_speedup``,
    ``runner_up``, ``runner_up_accuracy``, ``runner_up_k``, ``difference``, ``difference_ci``
    and ``verdict`` (:func:`helpers.intervals.verdict` of best minus runner-up on test); ``best``
    is empty when nothing fits.
    """
    points = candidates(results, efficiency, batch)
    dense = dense_rows(results)["remaining_weights"].mean()
    budgets = [("weights", f, dense / f, points["remaining_weights"] <= dense / f) for f in WEIGHT_FACTORS]
    budgets += [("latency", f, float(f), points["measured_speedup"] >= f) for f in SPEEDUP_FACTORS]
    rows = []
    for kind, factor, budget, fits in budgets:
        best = _chosen(points[fits])
        row = {"budget_kind": kind, "factor": factor, "budget": budget}
        if len(best):
            top = best.iloc[0]
            row.update(best=top["label"], method=top["method"], strategy=top["strategy"], epochs=int(top["epochs"]),
                       k=top["k"], val_accuracy=top["val_accuracy"], accuracy=top["accuracy"], ci=top["ci"],
                       remaining_weights=top["remaining_weights"], measured_speedup=top["measured_speedup"])
        if len(best) > 1:
            second = best.iloc[1]
            gap = paired(_by_seed(results, top), _by_seed(results, second))
            row.update(runner_up=second["label"], runner_up_accuracy=second["accuracy"], runner_up_k=second["k"],
                       difference=gap["difference"], difference_ci=gap["ci"],
                       verdict=verdict(gap["difference"], gap["ci"]))
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
        text = (f"- {budget}, validation ranks first **{r.best}** at k = {level(r.k)}: "
                f"{plus_minus(r.accuracy, r.ci)} on test with {r.remaining_weights:,.0f} weights")
        if isinstance(r.get("runner_up"), str):
            gap = plus_minus(r.difference, r.difference_ci).replace(" %", " points")
            words = {"higher": "ahead of", "lower": "behind", "within noise": "within noise of"}[r.verdict]
            text += (f"; it is {words} the next, {r.runner_up} at k = {level(r.runner_up_k)} "
                     f"({r.runner_up_accuracy:.2%}; paired difference on test {gap})")
        lines.append(text + ".")
    return "\n".join(lines)


def against_scratch(results: pd.DataFrame) -> pd.DataFrame:
    """Pruned networks against the scratch control at every level where it ran: per method and
    level, the scratch control's test accuracy (mean, 95 % interval), the pruned strategy and
    budget validation ranks first there with its test accuracy, and their paired ``difference``
    on test with its interval; ``verdict`` is ``pruning`` when that interval lies above zero,
    ``control`` below it, ``tie`` (within noise) otherwise."""
    rows = results[results["ranking"] == LAYER.name]
    stats = rows.groupby(["method", "strategy", "epochs", "k"], as_index=False).agg(
        val=("val_accuracy", "mean"), mean=("accuracy", "mean"), ci=("accuracy", half_width),
        size=("accuracy", "size"))
    out = []
    for _, control in stats[stats["strategy"].map(lambda s: registered(s).control and not registered(s).retrains)
                            ].iterrows():
        pruned = stats[(stats["method"] == control["method"]) & (stats["k"] == control["k"])
                       & stats["strategy"].map(lambda s: registered(s).retrains)]
        if pruned.empty:
            continue
        best = pruned.sort_values("val", ascending=False).iloc[0]
        gap = paired(_by_seed(rows, best), _by_seed(rows, control))
        decided = verdict(gap["difference"], gap["ci"])
        out.append({"method": control["method"], "k": control["k"], "control": control["strategy"],
                    "scratch_epochs": int(control["epochs"]), "scratch_accuracy": control["mean"],
                    "scratch_ci": control["ci"], "pruned_strategy": best["strategy"],
                    "pruned_epochs": int(best["epochs"]), "pruned_accuracy": best["mean"], "pruned_ci": best["ci"],
                    "difference": gap["difference"], "difference_ci": gap["ci"], "seeds": gap["n"],
                    "verdict": {"higher": "pruning", "lower": "control"}.get(decided, "tie")})
    return pd.DataFrame(out)
def against_scratch_markdown(table: pd.DataFrame) -> str:
    """Sentences stating where pruning beats the scratch control, from :func:`against_scratch`."""
    if table.empty:
        return ("This run trained no scratch control: its study leaves it out (the report's study runs it on MNIST; "
                "`make report STUDY=extended` everywhere).")
    lines = []
    for decided, words in (("pruning", "pruning and retraining beats training the same network from scratch"),
                           ("control", "training from scratch beats pruning"),
                           ("tie", "the two are within noise (the paired interval holds zero)")):
        hits = table[table["verdict"] == decided]
        for (method, control), group in hits.groupby(["method", "control"], sort=False):
            where = ", ".join(f"k = {level(k)} ({plus_minus(d, c).replace(' %', ' points')})"
                              for k, d, c in zip(group.k, group.difference, group.difference_ci))
            lines.append(f"- {method.capitalize()} pruning against {registered(control).label}: {words} at {where}.")
    return "\n".join(lines)


def budget_table(results: pd.DataFrame, efficiency: pd.DataFrame, batch: int = 256) -> pd.DataFrame:
    """For every method, strategy and budget of retraining (rows, :func:`candidates` labels),
    the mean test accuracy of the level validation ranks first among those that fit each cost
    budget (columns): at most 1/f of the dense weights in every seed (f in
    :data:`WEIGHT_FACTORS`) and a measured speed-up of at least f (f in
    :data:`SPEEDUP_FACTORS`) at ``batch``; NaN where no level fits."""
    points = candidates(results, efficiency, batch)
    dense = dense_rows(results)["remaining_weights"].mean()
    columns = {f"1/{f} of the weights": points["remaining_weights"] <= dense / f for f in WEIGHT_FACTORS}
    columns.update({f"{f}× faster": points["measured_speedup"] >= f for f in SPEEDUP_FACTORS})
    table = pd.DataFrame({name: _chosen(points[fits]).set_index("label")["accuracy"]
                          for name, fits in columns.items()}).reindex(points["label"].unique())
    table.index.name = None
    return table


def answer_markdown(results: pd.DataFrame, efficiency: pd.DataFrame, tolerance: float = 0.01,
                    batch: int = 256) -> str:
    """The study's answer in a few sentences, each computed from ``results`` and ``efficiency``:
    how few weights, and how large a measured speed-up, keep accuracy within ``tolerance`` of
    the dense network on validation (where the choice is made; the test accuracy is reported with
    its 95 % interval), by which method; and whether pruning beats training from scratch."""
    points = candidates(results, efficiency, batch)
    dense = dense_rows(results)
    dense = dense.drop_duplicates("seed") if "seed" in dense else dense  # one dense model per seed
    val, test, ci, weights = (dense["val_accuracy"].mean(), dense["accuracy"].mean(), half_width(dense["accuracy"]),
                              dense["remaining_weights"].mean())
    good = points[points["val_accuracy"] >= val - tolerance]
    lines = [f"The dense network reaches {plus_minus(test, ci)} on test ({weights:,.0f} weights)."]
    if good.empty:
        lines.append(f"No pruned network of this run stays within {tolerance * 100:g} point of it on validation.")
    else:
        few = good.sort_values(["remaining_weights", "val_accuracy"], ascending=[True, False]).iloc[0]
        lines.append(f"Within {tolerance * 100:g} point of it on validation, the fewest weights are kept by "
                     f"**{few.label}** at k = {level(few.k)}: {few.remaining_weights:,.0f} weights "
                     f"({weights / few.remaining_weights:.0f}× fewer), {plus_minus(few.accuracy, few.ci)} on test.")
        fast = good.dropna(subset=["measured_speedup"]).sort_values(["measured_speedup", "val_accuracy"],
                                                                      ascending=[False, False])
        if len(fast):
            top = fast.iloc[0]
            lines.append(f"The largest measured speed-up within that point is **{top.measured_speedup:.1f}×** "
                         f"(batch {batch}), by **{top.label}** at k = {level(top.k)} "
                         f"({plus_minus(top.accuracy, top.ci)} on test).")
    control = against_scratch(results)
    text = " ".join(lines)
    if len(control):
        text += ("\n\nAgainst the same network trained from scratch, the retraining validation ranks first at each "
                 "level (a win or a loss needs the paired 95 % interval over seeds to exclude zero):\n\n")
        text += "\n".join(f"- {method} pruning against {registered(c).label.removesuffix(' (control)')}: "
                           f"{_verdicts(group)}." for (method, c), group in control.groupby(["method", "control"],
                                                                                           sort=False))
    return text


def _verdicts(table: pd.DataFrame) -> str:
    """``wins at k = 99.7 %; loses at k = 97.5 and 99.2 %`` for the rows of one control of
    :func:`against_scratch`."""
    said = []
    for decided, words in (("pruning", "wins"), ("control", "loses"), ("tie", "within noise")):
        ks = [f"{k:g}" for k in sorted(table.loc[table["verdict"] == decided, "k"])]
        if ks:
            said.append(f"{words} at k = {' and '.join([', '.join(ks[:-1]), ks[-1]] if len(ks) > 1 else ks)} %")
    return "; ".join(said)


def with_training_compute(results: pd.DataFrame, dense_epochs: int, images: int) -> pd.DataFrame:
    """``results`` with ``train_macs``: the multiply-adds spent training each network, from the
    dense model's training (``dense_epochs`` on ``images`` images) on, counted as a sparse
    implementation spends them: per epoch, three multiply-adds (forward, weight gradient, input
    gradient) per image for every weight of the form trained (its ``remaining_weights``).
    One-shot networks cost the dense training; a retrained network adds its budget at its own
    weights; a round of an iterative strategy adds every round before it on its path (the
    re-initialised ticket, the ticket's rounds that found its mask); gradual pruning, whose
    weights fall from the dense count to the final one over the first half of its run, is
    counted at a quarter of the dense weights plus three quarters of the final ones (an
    estimate: the cubic schedule removes most weights early)."""
    per_weight = 3 * images
    dense = float(dense_rows(results)["remaining_weights"].max())  # one architecture: every seed's (the sweep's seeds hold the row)
    macs = []
    for row in results.itertuples():
        spent = dense_epochs * per_weight * dense
        strategy = registered(row.strategy)
        if strategy.rounds:
            chain = strategy.follows or strategy.name
            chain_rows = results[(results.seed == row.seed) & (results.method == row.method)
                                 & (results.strategy == chain) & (results.ranking == row.ranking)]
            per_round = int(chain_rows.epochs.min())
            before = chain_rows[chain_rows.k < row.k] if strategy.follows else chain_rows[chain_rows.k <= row.k]
            spent += per_round * per_weight * before.remaining_weights.sum()
            if strategy.follows:
                spent += per_round * per_weight * row.remaining_weights
        elif strategy.trains:
            trained = row.remaining_weights if strategy.fixed_mask or not strategy.retrains else (
                dense + 3 * row.remaining_weights) / 4
            spent += row.epochs * per_weight * trained
        macs.append(float(spent))
    return results.assign(train_macs=macs)


FRONTIER_TARGETS: dict[str, tuple[tuple[float, float, str], ...]] = {
    "mnist": ((21_300, 0.984, "Han et al. 2015: LeNet-300-100 at 8 % of its weights, 98.41 %"),
              (9_600, 0.98, "Frankle & Carbin 2019: LeNet-300-100 tickets at 3.6 %, about 98 %")),
    "fashion_mnist": ((12_000, -0.01, "within 1 point of the dense network"),),
}
"""Per dataset, the published points the frontier is held against: a weight budget, the test
accuracy to reach there (a negative value: that far below the dense accuracy) and where the
figure comes from."""


def frontier(results: pd.DataFrame, budgets=None, min_seeds: int = 1) -> pd.DataFrame:
    """Per method, at every weight budget of ``budgets`` (default: the remaining weights of every
    candidate), the network validation ranks first among those with at most that many weights
    in every seed (:func:`candidates`: any strategy, budget of retraining and level, per-layer
    ranking): ``method``, ``budget``, ``label``, ``strategy``, ``epochs``, ``k``,
    ``remaining_weights``, ``val_accuracy``, ``accuracy``, ``ci``, ``seeds`` and, when the
    results have it, ``train_macs``; only networks run on at least ``min_seeds`` seeds compete."""
    points = candidates(results)
    points = points[points["seeds"] >= min_seeds]
    keep = [c for c in ("label", "strategy", "epochs", "k", "remaining_weights", "val_accuracy", "accuracy", "ci",
                        "seeds", "train_macs") if c in points]
    rows = []
    for method, of in points.groupby("method", sort=False):
        for budget in sorted(set(of["remaining_weights"]) if budgets is None else budgets):
            fits = of[of["remaining_weights"] <= budget]
            if len(fits):
                rows.append({"method": method, "budget": float(budget), **_chosen(fits).iloc[0][keep].to_dict()})
    return pd.DataFrame(rows)


TARGET_SEEDS = 5
"""The seeds a network needs to meet a target: the mean over fewer is too uncertain to count."""


def frontier_targets(results: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The frontier at each budget of :data:`FRONTIER_TARGETS` of ``dataset``, across methods,
    among the networks run on at least :data:`TARGET_SEEDS` seeds (on fewer, none counts): the
    network validation ranks first under the budget, its test accuracy with its 95 % interval,
    the ``target`` (a relative one counted from the mean dense accuracy), whether the mean
    reaches it (``reached``), and the ``reference``."""
    dense = dense_rows(results)
    dense = dense.drop_duplicates("seed") if "seed" in dense else dense
    rows = []
    for budget, target, reference in FRONTIER_TARGETS.get(dataset, ()):
        target = dense["accuracy"].mean() + target if target < 0 else target
        best = frontier(results, [budget], min_seeds=TARGET_SEEDS)
        if best.empty:
            rows.append({"budget": budget, "target": target, "reference": reference, "reached": False})
            continue
        top = best.sort_values("val_accuracy", ascending=False).iloc[0]
        rows.append({"budget": budget, "target": target, "reference": reference, "method": top["method"],
                     "label": top["label"], "k": top["k"], "remaining_weights": top["remaining_weights"],
                     "accuracy": top["accuracy"], "ci": top["ci"], "seeds": int(top["seeds"]),
                     "reached": bool(top["accuracy"] >= target)})
    return pd.DataFrame(rows)


def frontier_targets_markdown(table: pd.DataFrame) -> str:
    """One sentence per row of :func:`frontier_targets`."""
    lines = []
    for r in table.itertuples():
        if not isinstance(getattr(r, "label", None), str):
            lines.append(f"- With at most {r.budget:,.0f} weights: no network of this run on {TARGET_SEEDS} seeds or "
                         f"more fits ({r.reference}).")
            continue
        verdict = "reaches" if r.reached else "does **not** reach"
        lines.append(f"- With at most {r.budget:,.0f} weights, validation ranks first **{r.label}** at "
                     f"k = {level(r.k)} ({r.remaining_weights:,.0f} weights): {plus_minus(r.accuracy, r.ci)} on test "
                     f"over {r.seeds} seeds, which {verdict} {r.target:.2%} ({r.reference}).")
    return "\n".join(lines)


def ticket_against_reinit(results: pd.DataFrame) -> pd.DataFrame:
    """The lottery ticket against its mask re-initialised (Frankle & Carbin's control) at every
    level where the control ran: per method and level, both test accuracies (mean, 95 %
    interval), ``remaining_weights`` and the paired ``difference`` over the seeds both ran with
    its interval and ``verdict`` (:func:`helpers.intervals.verdict`)."""
    rows = results[results["ranking"] == LAYER.name]
    control = rows[rows["strategy"].map(lambda s: registered(s).follows is not None)]
    out = []
    for (method, follows_name, k), of in control.groupby(
            ["method", control["strategy"].map(lambda s: registered(s).follows), "k"], sort=False):
        ticket = rows[(rows["method"] == method) & (rows["strategy"] == follows_name) & (rows["k"] == k)]
        if ticket.empty:
            continue
        gap = paired(ticket.set_index("seed")["accuracy"], of.set_index("seed")["accuracy"])
        out.append({"method": method, "k": k, "remaining_weights": float(ticket["remaining_weights"].max()),
                    "ticket_accuracy": ticket["accuracy"].mean(), "ticket_ci": half_width(ticket["accuracy"]),
                    "reinit_accuracy": of["accuracy"].mean(), "reinit_ci": half_width(of["accuracy"]),
                    "difference": gap["difference"], "difference_ci": gap["ci"], "seeds": gap["n"],
                    "verdict": verdict(gap["difference"], gap["ci"])})
    return pd.DataFrame(out)


def ticket_against_reinit_markdown(table: pd.DataFrame) -> str:
    """Whether Frankle & Carbin's finding (a winning ticket beats its mask re-initialised)
    reproduces, level by level, from :func:`ticket_against_reinit`."""
    if table.empty:
        return ("This run trained no lottery ticket with its re-initialised control: its study leaves them out (the "
                "report's study runs them on MNIST weight pruning; `make report STUDY=extended` everywhere).")
    lines = []
    for r in table.itertuples():
        words = {"higher": "beats its mask re-initialised: Frankle & Carbin's finding reproduces",
                 "lower": "falls below its mask re-initialised: their finding does not reproduce",
                 "within noise": "is within noise of its mask re-initialised: no winning ticket here"}[r.verdict]
        lines.append(f"- {r.method.capitalize()} pruning at k = {level(r.k)} ({r.remaining_weights:,.0f} weights): the "
                     f"ticket ({plus_minus(r.ticket_accuracy, r.ticket_ci)}) {words} "
                     f"({plus_minus(r.reinit_accuracy, r.reinit_ci)}; paired difference "
                     f"{plus_minus(r.difference, r.difference_ci).replace(' %', ' points')} over {r.seeds} seeds).")
    return "\n".join(lines)
