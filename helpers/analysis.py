"""Conclusions computed from pruning results, set beside the original study's findings."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from .pruning import METHODS, method as pruning_method
from .retraining import MAX_RETRAINING_EPOCHS
from .sources import DATASETS
from .strategies import GRADUAL, LAYER, ONESHOT, RANKINGS, STRATEGIES, named, strategy as registered, sweep_rows
from .intervals import half_width, plus_minus
from .tables import level

ORIGINAL_FINDINGS: dict[str, dict[str, float]] = {
    "weight": {"flat_to": 80.0, "degrades_near": 90.0},
    "unit": {"flat_to": 30.0, "degrades_near": 60.0},
}
"""What the original study reported: accuracy flat for k in [0, flat_to], degradation near
``degrades_near`` (percent). Quoted from STUDY.md, to compare with, never to copy."""

ORIGINAL_DENSE_ACCURACY = 0.9861
"""The dense network's test accuracy the original study reported (10 epochs)."""

ORIGINAL_DATASET = "mnist"
"""The dataset of the original study: its figures are quoted beside this dataset's results only."""


def _quotes_original(results: pd.DataFrame) -> bool:
    """Whether ``results`` are of the original study's dataset (rows without a dataset are)."""
    return "dataset" not in results or set(results["dataset"]) <= {ORIGINAL_DATASET}


def dense_markdown(history: pd.DataFrame, dataset: str) -> str:
    """The sentence after the learning curves: the dense models' final test accuracy over the
    seeds, the original study's beside it for its own dataset only, and the time per epoch."""
    final = history[history.epoch == history.epoch.max()]
    quoted = (f"; the original study reported {ORIGINAL_DENSE_ACCURACY:.2%} on MNIST"
              if dataset == ORIGINAL_DATASET else "")
    return (f"After {int(final.epoch.iloc[0])} epochs: test accuracy **{final.test_accuracy.mean():.2%}** "
            f"(over {len(final)} seed(s){quoted}), {history.seconds.mean():.1f} s per epoch of training on this "
            f"machine, with one torch thread per model.")


def _speed(ratio: float) -> str:
    """A measured speed ratio in words: ``**1.6×** faster than``, or for a ratio below 1 (a
    slow-down) ``**0.85×** as fast as``; never "faster" for what is slower."""
    return f"**{ratio:.1f}×** faster than" if ratio >= 1 else f"**{ratio:.2f}×** as fast as (slower than)"

TARGETS: dict[str, tuple[tuple[str, float, float], ...]] = {
    "mnist": (("dense", 0.0, 0.985), ("weight", 99.0, 0.983), ("weight", 99.5, 0.975), ("unit", 90.0, 0.983),
              ("unit", 95.0, 0.970)),
    "fashion_mnist": (("weight", 97.5, -0.01), ("unit", 75.0, -0.01)),
}
"""Per dataset, (method, k, test accuracy to reach, mean over seeds) that retraining after pruning
aims at; a negative target is relative: within that much of the dense accuracy."""


def dense_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of the dense models (one-shot at k = 0), which every strategy starts from."""
    return results[(results["k"] == 0) & (results["strategy"] == ONESHOT.name)]


def mean_curve(results: pd.DataFrame, method: str) -> pd.Series:
    """Accuracy by k for ``method``, averaged over any other rows (seeds) at the same k."""
    rows = results[results["method"] == method]
    if rows.empty:
        raise ValueError(f"no results for method {method!r}; present: {sorted(results['method'].unique())}")
    return rows.groupby("k")["accuracy"].mean().sort_index()


def _with_dense(results: pd.DataFrame, strategy: str) -> pd.DataFrame:
    """Rows of ``strategy``, plus the one-shot k = 0 rows (the dense model every strategy starts from)."""
    dense = results[(results["strategy"] == ONESHOT.name) & (results["k"] == 0)]
    rows = results[(results["strategy"] == strategy) & (results["k"] > 0)]
    return pd.concat([dense, rows], ignore_index=True)


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
    """Per method (and per strategy, when ``results`` has a ``strategy`` column; per-layer
    ranking only, when it has a ``ranking`` column): dense accuracy (k = 0), the largest k
    within ``tolerance`` of it (``flat_to``), the first level that drops more
    (``degrades_at``), the first level at which accuracy is below half the dense accuracy
    (``halves_at``), accuracy at the highest tested k, and the original study's figures
    beside the one-shot rows. Accuracies are means over seeds."""
    if "ranking" in results:
        results = results[results["ranking"] == LAYER.name]
    if "strategy" not in results:
        results = results.assign(strategy=ONESHOT.name)
    results = sweep_rows(results)
    quoted = _quotes_original(results)  # the original study's figures are MNIST's
    order = {m: i for i, m in enumerate(ORIGINAL_FINDINGS)}
    rows = []
    for method in sorted(results["method"].unique(), key=lambda m: order.get(m, len(order))):
        of_method = results[results["method"] == method]
        for strategy in named(of_method["strategy"], control=False):
            curve = mean_curve(_with_dense(of_method, strategy), method)
            if curve.index[0] != 0:
                raise ValueError(f"{method} results lack the dense level k = 0, needed as the baseline")
            dense = float(curve.iloc[0])
            flat = flat_to(curve, dense, tolerance)
            later = curve[curve.index > flat]
            within = curve[curve >= dense - tolerance]
            last_within = float(within.index[-1])
            dips = [k for k, ok in (curve >= dense - tolerance).items() if not ok and k < last_within]
            original = ORIGINAL_FINDINGS.get(method, {}) if strategy == ONESHOT.name and quoted else {}
            budget = results.loc[(results["method"] == method) & (results["strategy"] == strategy), "epochs"] \
                if "epochs" in results else pd.Series([0])
            rows.append({
                "method": method,
                "strategy": strategy,
                "epochs": int(budget.max()) if len(budget) else 0,
                "dense_accuracy": dense,
                "flat_to": flat,
                "degrades_at": float(later.index[0]) if len(later) else math.nan,
                "last_within": last_within,
                "drops_after": float(curve.index[curve.index > last_within][0]) if last_within < curve.index[-1]
                else math.nan,
                "dips": " ".join(f"{k:g}" for k in dips),
                "halves_at": first_below(curve, dense / 2),
                "max_k": float(curve.index[-1]),
                "accuracy_at_max_k": float(curve.iloc[-1]),
                "original_flat_to": original.get("flat_to", math.nan),
                "original_degrades_near": original.get("degrades_near", math.nan),
                "tolerance": tolerance,
            })
    return pd.DataFrame(rows)


def _levels(ks) -> str:
    named = [level(k) for k in ks]
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]


def stages_markdown(stages, k: float, seed: int, method: str) -> str:
    """The sentence introducing the before-and-after figure of a pruning notebook: which
    ``stages`` (names, e.g. dense, one-shot, fine-tuned) it shows, at level ``k`` for ``seed``,
    counting what ``method`` prunes (weights or neurons)."""
    unit = f"{pruning_method(method).unit}s"
    shown = list(stages)
    text = f"The surviving {unit} of every layer at k = {level(k)} (seed {seed}): " + ", ".join(shown[:-1])
    text += f" and {shown[-1]}."
    if "fine-tuned" not in shown:
        text += " This run did not fine-tune (its strategies leave fine-tuning out), so there is no after."
    return text


def longer_budget_markdown(target_ks, strategies, target_epochs: int, recovery_epochs: int,
                           longest_lrs: Mapping[str, Mapping[float, float]] | None = None,
                           longest_epochs: int | None = None) -> str:
    """The sentences introducing the longer-budget table, with the run's values: every retraining
    strategy at ``target_epochs``, and, from ``longest_lrs`` (strategy -> level -> learning rate
    chosen on validation), who retrained for ``longest_epochs`` where. An empty choice of levels,
    or no retraining strategy, reads as a sentence too."""
    retraining = [registered(s).label for s in strategies if registered(s).trains and not registered(s).control]
    if not target_ks or not retraining:
        why = "no level was chosen for it" if not target_ks else "this run retrains with no strategy"
        return f"This run has no longer retraining budget: {why}."
    controls = [s for s in strategies if registered(s).control]
    reference = "the controls at their own budgets and one-shot" if controls else "one-shot"
    text = (f"{' and '.join(retraining).capitalize()} with {target_epochs} epochs of training instead of "
            f"{recovery_epochs}, at k = {_levels(target_ks)} (mean ± half-width of the 95 % interval over seeds); {reference} for reference.")
    for strategy, by_level in (longest_lrs or {}).items():
        chosen = ", ".join(f"{lr:g} at k = {level(k)}" for k, lr in sorted(by_level.items()))
        text += (f" At k = {_levels(sorted(by_level))}, {registered(strategy).label}, the strategy "
                 f"that scored best on the validation split at the nearest tuned level, also retrained for "
                 f"{longest_epochs} epochs, at the learning rate validation chose for that length ({chosen}).")
    return text


def strategies_markdown(strategies) -> str:
    """What each strategy of ``strategies`` (names, in the run's order) does, in the registry's
    words, and which of them train at a learning rate chosen on validation."""
    text = "Test accuracy of the pruned network for each strategy, mean ± half-width of its 95 % interval over the seeds. "
    text += " ".join(f"*{registered(s).label}* {registered(s).does}." for s in strategies)
    tuned = [f"*{registered(s).label}*" for s in strategies if registered(s).tuned]
    if tuned:
        text += (f" {' and '.join(tuned)} {'trains' if len(tuned) == 1 else 'train'} at the learning rate chosen for "
                 f"each level on the validation split (below).")
    return text


def conclusions_markdown(table: pd.DataFrame) -> str:
    """Sentences stating what :func:`findings` computed; every number comes from ``table``."""
    if "strategy" not in table:
        table = table.assign(strategy=ONESHOT.name)
    lines = []
    for _, r in table.iterrows():
        epochs = int(r.get("epochs", 0) or 0)
        budget = f" ({epochs} epoch{'s' if epochs > 1 else ''})" if epochs else ""
        who = f"**{r.method.capitalize()} pruning, {registered(r.strategy).label}{budget}**,"
        dips = r.get("dips")
        dips = [] if dips is None or (isinstance(dips, float) and math.isnan(dips)) else [float(k) for k in str(dips).split()]
        last = r.get("last_within", r.flat_to)
        if dips:  # not monotone: say where it is within, and where it dips, not just where it first drops
            text = (f"- {who} is within {r.tolerance * 100:g} point of the dense accuracy ({r.dense_accuracy:.2%}) "
                    f"at every level up to k = {level(last)} except k = {_levels(dips)}")
        elif r.flat_to > 0:
            text = (f"- {who} stays within {r.tolerance * 100:g} point of the dense accuracy "
                    f"({r.dense_accuracy:.2%}) up to k = {level(r.flat_to)}")
        else:
            text = (f"- {who} loses more than {r.tolerance * 100:g} point of the dense accuracy "
                    f"({r.dense_accuracy:.2%}) at the first tested level")
        after = r.get("drops_after", r.degrades_at)
        text += (f"; the first level beyond that drops further is k = {level(after)}"
                 if not math.isnan(after) else "; no tested level drops further")
        text += (f"; accuracy falls below half the dense accuracy at k = {level(r.halves_at)}"
                 if not math.isnan(r.halves_at) else "; accuracy never falls below half the dense accuracy")
        text += f"; at k = {level(r.max_k)} it is {r.accuracy_at_max_k:.2%}."
        if not math.isnan(r.original_flat_to):
            verdict = ("later than" if r.flat_to > r.original_flat_to
                       else "earlier than" if r.flat_to < r.original_flat_to else "at the same level as")
            text += (f" The original study saw it flat to {level(r.original_flat_to)} and degrading near "
                     f"{level(r.original_degrades_near)}: here the flat region ends {verdict} that.")
        lines.append(text)
    oneshot = table[table.strategy == ONESHOT.name].set_index("method")
    if {"weight", "unit"} <= set(oneshot.index) and not oneshot.original_flat_to.isna().any():
        w, u = oneshot.loc["weight"], oneshot.loc["unit"]
        if u.flat_to < w.flat_to:
            lines.append(f"- One-shot unit pruning loses accuracy sooner than weight pruning (flat to "
                         f"{level(u.flat_to)} against {level(w.flat_to)}), as the original study found.")
        elif u.flat_to > w.flat_to:
            lines.append(f"- Unlike the original study, one-shot unit pruning stays flat longer than weight "
                         f"pruning here ({level(u.flat_to)} against {level(w.flat_to)}).")
        else:
            lines.append(f"- Both methods stay flat to the same level ({level(w.flat_to)}) one-shot, unlike "
                         f"the original study, where unit pruning degraded sooner.")
    return "\n".join(lines)


TARGET_COLUMNS = ("method", "k", "target", "best_strategy", "best_epochs", "best_accuracy", "best_ci", "seeds",
                  "reached", "longest_epochs")
"""The columns of every row of :func:`targets` (the accuracy of each strategy and budget follows them)."""


def targets(results: pd.DataFrame, dataset: str = "mnist") -> pd.DataFrame:
    """For each of the :data:`TARGETS` of ``dataset``: the accuracy of every strategy at that
    (method, k), mean over seeds, the strategy and budget validation ranks first with its test
    accuracy and 95 % interval, and whether it reaches the target (per-layer ranking; a relative
    target counts from the mean dense accuracy)."""
    if "ranking" in results:
        results = results[results["ranking"] == LAYER.name]
    if "strategy" not in results:
        results = results.assign(strategy=ONESHOT.name)
    dense = dense_rows(results)
    dense = dense.drop_duplicates(["seed"] if "seed" in dense else None)["accuracy"].mean()
    rows = []
    for method, k, target in TARGETS.get(dataset, ()):
        target = dense + target if target < 0 else target
        at = results[results["k"] == 0] if method == "dense" else results[(results["method"] == method) & (results["k"] == k)]
        if method == "dense":
            at = at[at["strategy"] == ONESHOT.name].drop_duplicates(["seed"] if "seed" in at else None)
        if at.empty:
            continue
        if "epochs" not in at:
            at = at.assign(epochs=0)
        stats = at.groupby(["strategy", "epochs"]).agg(mean=("accuracy", "mean"), ci=("accuracy", half_width),
                                                       count=("accuracy", "size"), val=("val_accuracy", "mean"))
        strategy, epochs = stats["val"].idxmax()  # chosen on validation, reported on test
        best = stats.loc[(strategy, epochs)]
        retrained = [e for s, e in stats.index if registered(s).retrains]
        row = {"method": method, "k": k, "target": target, "best_strategy": strategy, "best_epochs": int(epochs),
               "best_accuracy": best["mean"], "best_ci": best["ci"], "seeds": int(best["count"]),
               "reached": bool(best["mean"] >= target), "longest_epochs": int(max(retrained, default=0))}
        row.update({f"accuracy_{s}_{e}ep": stats.loc[(s, e), "mean"] for s, e in stats.index if s != ONESHOT.name})
        if (ONESHOT.name, 0) in stats.index:
            row["accuracy_oneshot"] = stats.loc[(ONESHOT.name, 0), "mean"]
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else list(TARGET_COLUMNS))  # none reached: a table with a header


def targets_markdown(table: pd.DataFrame) -> str:
    """One sentence per target row of :func:`targets`, saying whether it was reached."""
    lines = []
    for _, r in table.iterrows():
        what = "the dense model" if r.method == "dense" else f"{r.method} pruning at k = {level(r.k)}"
        how = "" if r.method == "dense" else f" ({registered(r.best_strategy).label}" + (
            f", {r.best_epochs} epoch{'s' if r.best_epochs > 1 else ''})" if r.best_epochs else ")")
        verdict = "reaches" if r.reached else "does **not** reach"
        why = ""
        if not r.reached and r.method != "dense":
            longest = int(r.get("longest_epochs", 0) or 0)
            why = (" No retraining ran at this level." if longest == 0 else
                   f" The longest retraining run at this level is {longest} epoch{'s' * (longest != 1)}, of the "
                   f"{MAX_RETRAINING_EPOCHS} the targets allow: a longer budget was not tried."
                   if longest < MAX_RETRAINING_EPOCHS else
                   f" Even the longest budget the targets allow falls short, by {(r.target - r.best_accuracy) * 100:.2f} "
                   f"points: more is outside them.")
        lines.append(f"- {what.capitalize() if what[0].islower() else what}{how}, first on validation: "
                     f"{plus_minus(r.best_accuracy, r.best_ci)} on test over {r.seeds} seed(s), {verdict} the "
                     f"target of {r.target:.1%}.{why}")
    return "\n".join(lines)


def retraining_vs_oneshot(results: pd.DataFrame, tolerance: float = 0.001) -> pd.DataFrame:
    """At every level and method: one-shot test accuracy, the retrained strategy and budget
    validation ranks first (any of the strategies that retrain; means over seeds), its test
    accuracy, and whether that is more than ``tolerance`` below one-shot (``hurts``): retraining
    should never lose what pruning alone kept."""
    rows = results[(results["ranking"] == LAYER.name) & (results["k"] > 0)]
    means = rows.groupby(["method", "k", "strategy", "epochs"])[["accuracy", "val_accuracy"]].mean().reset_index()
    out = []
    for (method, k), at in means.groupby(["method", "k"]):
        oneshot = at[at["strategy"] == ONESHOT.name]["accuracy"]
        retrained = at[at["strategy"].map(lambda s: registered(s).retrains)].sort_values("val_accuracy",
                                                                                          ascending=False)
        if oneshot.empty or retrained.empty:
            continue
        best = retrained.iloc[0]
        out.append({"method": method, "k": k, ONESHOT.name: float(oneshot.iloc[0]), "best_strategy": best["strategy"],
                    "best_epochs": int(best["epochs"]), "best_retrained": best["accuracy"],
                    "hurts": bool(best["accuracy"] < oneshot.iloc[0] - tolerance)})
    return pd.DataFrame(out)


def retraining_vs_oneshot_markdown(table: pd.DataFrame, tolerance: float = 0.001) -> str:
    """Whether the best retraining ever falls below one-shot pruning, from :func:`retraining_vs_oneshot`."""
    if table.empty:
        return "This run retrained no pruned network, so there is nothing to compare with one-shot pruning."
    hurts = table[table["hurts"]]
    if hurts.empty:
        return (f"At every one of the {len(table)} levels and methods, the best retraining is at most "
                f"{tolerance * 100:g} point below one-shot pruning (or above it).")
    where = ", ".join(f"{m} k = {level(k)} ({(b - o) * 100:+.2f} points)"
                      for m, k, b, o in zip(hurts.method, hurts.k, hurts.best_retrained, hurts.oneshot))
    return (f"At {len(hurts)} of {len(table)} levels and methods the best retraining is more than "
            f"{tolerance * 100:g} point below one-shot pruning: {where}.")


def machine_markdown(machine: dict) -> str:
    """One paragraph on where and how the efficiency benchmark ran, from its JSON record: the
    machine, the matrix-multiply peak, the training loop's rate against it in float32 and in
    bfloat16 autocast, and how much faster retraining and gradual pruning run in their forms."""
    m, peak, train = machine["machine"], machine["matmul_peak"], machine["training"]
    text = (
        f"Measured on {m['cpu']} ({m['logical_cores']} logical cores, {machine['threads']} torch thread(s), "
        f"torch {m['torch_version']}, BLAS {m.get('torch_blas', 'unknown')}). Dense matrix-multiply peak "
        f"{peak['gflops']:.1f} GFLOP/s; the training loop (batch {train['batch_size']}) reached "
        f"{train['gflops']:.1f} GFLOP/s, **{train['fraction_of_peak']:.0%} of that peak**, "
        f"{train['seconds_per_60000']:.1f} s per 60,000-image epoch at this thread count."
    )
    bf16 = machine.get("training_bf16")
    if bf16:
        native = "with" if bf16["native"] else "without"
        text += (f" In bfloat16 autocast, {native} native bf16 instructions on this CPU, the same loop runs at "
                 f"**{bf16['speedup_over_fp32']:.2f}×** the float32 speed"
                 + (": training stays in float32 here." if bf16["speedup_over_fp32"] < 1 else "."))
    for case, r in (machine.get("retraining") or {}).items():
        widths = "-".join(map(str, r["widths_compact"]))
        text += (f" A retraining epoch at {case} runs {_speed(r['speedup'])} the masked dense network in the "
                 f"form fine-tuning trains ({widths}) "
                 f"({r['seconds_per_60000_compact']:.1f} s against {r['seconds_per_60000_masked']:.1f} s "
                 f"per 60,000 images).")
    for case, r in (machine.get(GRADUAL.name) or {}).items():
        csr = f", in CSR from {r['csr_from_k']:g} %" if r["csr_from_k"] is not None and case.startswith("weight") else ""
        text += (f" An epoch of gradual pruning to {case}, which after each pruning step trains the smallest form "
                 f"of what is left{csr}, runs {_speed(r['speedup'])} an epoch of the masked dense "
                 f"network ({r['seconds_per_60000_gradual']:.1f} s against {r['seconds_per_60000_masked']:.1f} s).")
    return text


RESULT_COLUMNS = ("dataset", "seed", "method", "strategy", "ranking", "k", "epochs", "accuracy", "loss", "sparsity")
"""Columns every pruning results file holds."""


def check_results(results: pd.DataFrame, source: str = "results") -> pd.DataFrame:
    """Refuse pruning results that no notebook of this report could have written, or that cannot
    be compared: a missing column, an unknown dataset, method, strategy or ranking, a level
    outside [0, 100), an accuracy outside [0, 1], two rows for the same configuration, or a
    method without its dense level (one-shot, k = 0). Returns ``results``."""
    missing = [c for c in RESULT_COLUMNS if c not in results]
    if missing:
        raise ValueError(f"{source} lacks the column(s) {missing}; expected at least {list(RESULT_COLUMNS)}")
    for column, accepted in (("dataset", DATASETS), ("method", METHODS), ("strategy", STRATEGIES),
                             ("ranking", RANKINGS)):
        unknown = sorted(set(results[column]) - set(accepted), key=str)
        if unknown:
            raise ValueError(f"{source}: unknown {column} {unknown}; accepted: {list(accepted)}")
    for column, low, high, closed in (("k", 0, 100, False), ("accuracy", 0, 1, True)):
        values = pd.to_numeric(results[column], errors="coerce")
        bad = results[column][values.isna() | (values < low) | ((values > high) if closed else (values >= high))]
        if len(bad):
            raise ValueError(f"{source}: {column} {bad.iloc[0]} is outside [{low}, {high}{']' if closed else ')'}")
    key = ["dataset", "seed", "method", "strategy", "ranking", "k", "epochs"]
    repeated = results[results.duplicated(key, keep=False)]
    if len(repeated):
        raise ValueError(f"{source}: {len(repeated)} rows repeat a configuration, e.g. "
                         f"{repeated[key].iloc[0].to_dict()}")
    dense = dense_rows(results)
    without = sorted(set(results["method"]) - set(dense["method"]))
    if without:
        raise ValueError(f"{source}: the {', '.join(without)} results lack the dense level k = 0, the baseline "
                         f"every comparison needs: run the pruning notebook with 0 among its ks")
    return results


def provenance_markdown(record: dict) -> str:
    """A short paragraph on what produced a results file (its record from
    :func:`helpers.provenance.run_record`): seeds and the fingerprints of their dense weights,
    of the data as loaded, package versions and machine."""
    versions = ", ".join(f"{name} {v}" for name, v in record["versions"].items())
    m = record["machine"]
    parts = [f"Produced by `{record['notebook']}`"]
    fingerprints = record.get("dense_fingerprints", {})
    if fingerprints:
        parts.append("seeds " + ", ".join(f"{seed} (dense weights `{w}`)" for seed, w in fingerprints.items()))
    data = record.get("data", {})
    if data:
        parts.append("data " + ", ".join(f"{k.removesuffix('_data')} `{v}`" for k, v in data.items()))
    return (", ".join(parts) + f"; {versions}; on {m['cpu']} ({m['logical_cores']} logical cores, "
            f"{m['platform']}, {m['torch_threads']} torch threads, BLAS {m['torch_blas']}).")


def tuning_markdown(lrs, validation_size: int) -> str:
    """What the validation split chose: for each tuned strategy, the learning rate per tuned
    level (each study level takes the one of its nearest tuned level)."""
    if not lrs:
        return "This run retrains with no strategy whose learning rate is tuned, so nothing was chosen."
    parts = []
    for strategy, by_level in lrs.items():
        chosen = ", ".join(f"{lr:g} at k = {level(k)}" for k, lr in sorted(by_level.items()))
        parts.append(f"- **{registered(strategy).label.capitalize()}**: {chosen}.")
    return (f"Chosen on the {validation_size:,} training images every model of the study is trained without (the "
            f"test set plays no part); every other level takes the choice of the nearest tuned level, nearest in "
            f"the log of what is kept:\n\n" + "\n".join(parts))
