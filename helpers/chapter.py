"""The sections a pruning chapter (notebooks 03 and 04) shows, the same for every method: each draws its figure, says what to look at, and returns its table.

Each function takes the notebook's :class:`helpers.study.MethodStudy` and the path of the
figure it saves; what differs between the chapters (the method, its unit and its scores) comes
from the study's method (:data:`helpers.pruning.METHODS`), which strategy and ranking rows to
show from the registries (:mod:`helpers.strategies`). A notebook keeps its own prose and its
figures' file names.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd
from IPython.display import Markdown, display

from . import analysis, io, plotting, pruning, tables
from .strategies import FINETUNE, LAYER, ONESHOT, sweep_rows
from .tables import label
from .study import MethodStudy

Path = str | os.PathLike


def _unit(study: MethodStudy) -> str:
    return pruning.method(study.method).unit


def accuracy(study: MethodStudy, figure: Path) -> pd.DataFrame:
    """What each strategy does, test accuracy against the level for every strategy at its
    shortest budget, and the table of those accuracies (mean ± 95 % interval over seeds)."""
    display(Markdown(analysis.strategies_markdown(study.strategies)))
    layer = study.level_sweep()
    plotting.show(plotting.accuracy_vs_k(layer, title=f"{study.method} pruning"), figure,
                  alt=f"Two line charts, whole range and top five points: test accuracy against the level k of "
                      f"{study.method} pruning on a log scale of what is kept, one line style per strategy, dense "
                      f"accuracy dashed",
                  caption="Where a line leaves the dotted line (dense minus one point) is the highest level that "
                          "strategy tolerates; the gap between one-shot and the retrained lines is what retraining "
                          "recovers.")
    return tables.mean_interval_table(layer, "accuracy", "strategy")


def learning_rates(study: MethodStudy, validation_size: int):
    """What validation chose, and the validation accuracy of every learning rate tried."""
    display(Markdown(analysis.tuning_markdown(study.lrs, validation_size)))
    return tables.tuning_table(study.tuning).style.format("{:.2%}", na_rep="–")  # – : not tried there


def oneshot_rows(study: MethodStudy) -> pd.DataFrame:
    """The one-shot rows of the per-layer ranking: the pruned dense models, untrained."""
    results = study.results
    return results[(results.strategy == ONESHOT.name) & (results.ranking == LAYER.name)]


def layer_sparsity(study: MethodStudy, figure: Path):
    """The measured fraction of zeros per layer after one-shot pruning, against the level."""
    oneshot = oneshot_rows(study)
    plotting.show(plotting.layer_sparsity_plot(oneshot, study.method), figure,
                  alt="One small line chart per layer: measured fraction of zero weights against k, one-shot "
                      "pruning, with the line k / 100 dashed",
                  caption=f"Each pruned layer follows the dashed line (it loses k % of its {_unit(study)}s); a layer "
                          f"left out of pruning, by default the logits layer fc5, stays at zero.")
    per_layer = tables.per_layer_sparsity(oneshot, "loss", "sparsity", "nonzero_weights")
    return per_layer.style.format("{:.2%}", subset=["sparsity", *tables.layer_columns(per_layer)]).format(
        "{:.3f}", subset=["loss"]).format("{:,.0f}", subset=["nonzero_weights"]).format_index(tables.level)


def sensitivity(study: MethodStudy, seed: int, ks: Sequence[float], figure: Path, written: Path):
    """One layer pruned at a time (:meth:`MethodStudy.layer_sensitivity`), written to ``written``
    with the study's provenance, drawn, and tabled per level and layer."""
    by_layer = study.layer_sensitivity(seed, ks)
    io.write_csv(by_layer.assign(dataset=study.results.dataset.iloc[0], seed=seed), written, study.record)
    plotting.show(plotting.sensitivity_plot(by_layer), figure,
                  alt=f"Line chart: test accuracy when only one layer is {study.method}-pruned to level k, one line "
                      f"per layer",
                  caption=f"The layer whose line falls first limits how far uniform pruning can go; a line that "
                          f"stays flat marks a layer with {_unit(study)}s to spare.")
    return by_layer.pivot(index="k", columns="layer", values="accuracy").style.format("{:.2%}").format_index(
        tables.level)


def cutoffs(study: MethodStudy, seed: int, ks: Sequence[float], figure: Path):
    """The distribution of the scores the method ranks in each layer of the dense model of
    ``seed``, with the cut-off of every level of ``ks``, and a table of those cut-offs."""
    dense = study.dense.models[seed]
    by_level = {k: pruning.thresholds(dense, k, study.method, study.prune_last) for k in ks}
    scores = pruning.layer_scores(dense, study.method, study.prune_last)
    plotting.show(plotting.score_distribution(scores, by_level, study.method), figure,
                  alt=f"Histograms per layer of the scores {study.method} pruning ranks, with vertical lines at the "
                      f"cut-off of each marked level",
                  caption="Everything left of a level's line is removed at that level: the more mass sits there, the "
                          "more the level removes of what the layer computes.")
    return pd.DataFrame(by_level).rename(columns=lambda k: f"cut-off at k = {k:g} %").style.format("{:.4f}")


def shift(study: MethodStudy, seed: int, k: float, figure: Path) -> None:
    """The surviving scores of the dense, one-shot pruned and fine-tuned networks at ``k``."""
    stages = study.stages(seed, k)
    display(Markdown(analysis.stages_markdown(stages, k, seed, study.method)))
    plotting.show(plotting.distribution_shift(stages, study.method, study.prune_last), figure,
                  alt="Density histograms per layer of the surviving scores in the dense, one-shot pruned and "
                      "fine-tuned networks",
                  caption="One-shot pruning cuts the low end of the dense distribution; fine-tuning then moves the "
                          "survivors, which is how it wins back accuracy.")


def longer_budgets(study: MethodStudy, target_ks: Sequence[float], target_epochs: int, recovery_epochs: int,
                   longest_epochs: int) -> pd.DataFrame | None:
    """Every strategy at ``target_ks`` with every budget it ran (None when one budget ran)."""
    display(Markdown(analysis.longer_budget_markdown(target_ks, study.strategies, target_epochs, recovery_epochs,
                                                     study.longest_lrs, longest_epochs)))
    results = study.results
    hardest = results[(results.ranking == LAYER.name) & results.k.isin(target_ks)]
    return tables.mean_interval_table(hardest, "accuracy", ["strategy", "epochs"]) if hardest.epochs.nunique() > 1 else None


def rankings(study: MethodStudy, figure: Path) -> pd.DataFrame | Markdown:
    """Every ranking the study ran (:data:`helpers.strategies.RANKINGS`) at the levels where
    the others ran: the fine-tuned networks (the sweep's budget, at the rate chosen for
    per-layer fine-tuning) against the level, and a table of them and of one-shot pruning; at
    equal k they keep the same number of weights. A sentence saying so when only the per-layer
    ranking ran."""
    results = study.results
    ks = sorted(set(results.loc[results.ranking != LAYER.name, "k"]) - {0.0})
    if not ks:
        return Markdown("This run compared no other ranking: its study leaves them out (the report's study runs them "
                        "on MNIST; `make report STUDY=extended` everywhere).")
    at = sweep_rows(results[results.k.isin([0.0, *ks]) & results.strategy.isin([ONESHOT.name, FINETUNE.name])])
    tuned = at[(at.strategy == FINETUNE.name) | (at.k == 0)] if FINETUNE.name in set(at.strategy) else at
    plotting.show(plotting.accuracy_vs_k(tuned, style="ranking", title=f"{study.method} pruning: rankings, "
                                         f"{'fine-tuned' if FINETUNE.name in set(at.strategy) else 'one-shot'}"),
                  figure,
                  alt="Line chart: test accuracy against k of the networks pruned by each ranking (per layer, global, "
                      "LAMP, random) and fine-tuned alike, with 95 % interval bands",
                  caption="At equal k every ranking keeps the same number of weights: the gap between a line and "
                          "random pruning's is what choosing the weights is worth; where global ranking falls "
                          "below LAMP, it empties the small late layers.")
    return tables.mean_interval_table(at[at.k > 0], "accuracy", ["ranking", "strategy"])


def ranking_sparsity(study: MethodStudy):
    """The per-layer sparsity every ranking but the per-layer one chose, one-shot, at every level."""
    results = study.results
    chosen = results[(results.ranking != LAYER.name) & (results.strategy == ONESHOT.name) & (results.k > 0)]
    if chosen.empty:
        return None
    table = pd.concat({label(r): tables.per_layer_sparsity(rows) for r, rows in chosen.groupby("ranking", sort=False)},
                      names=["ranking"])
    return table.style.format("{:.2%}").format_index(tables.level, level=1)
