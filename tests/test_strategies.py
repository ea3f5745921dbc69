"""The registry of strategies and rankings: every module asks it, so a new strategy is one entry."""

import pytest

from helpers import (analysis, comparison, data, parameters, plotting, provenance, pruning, strategies, sweep,
                     tables, training)
from helpers.retraining import DenseModels, Budget
from helpers.strategies import Strategy

from .conftest import DATA_DIR


def test_the_registry_holds_the_studys_strategies_and_rankings_in_the_reports_order():
    assert list(strategies.STRATEGIES) == ["oneshot", "finetune", "gradual", "lrr", "ticket", "reinit", "scratch",
                                           "scratch_b"]
    assert list(strategies.RANKINGS) == ["layer", "global", "lamp", "random"]
    assert strategies.named(["ticket", "finetune", "oneshot"], control=False) == ["oneshot", "finetune"]
    assert [s.name for s in strategies.STRATEGIES.values() if s.tuned] == ["finetune", "gradual", "scratch", "scratch_b"]
    assert not strategies.ONESHOT.trains and strategies.LRR.described(60, 10) == (
        "iterative, learning-rate rewinding (10 epochs per round)")
    # the ticket's control trains once, for one round's epochs, on the mask its rounds found
    assert strategies.REINIT.described(80, 10) == "lottery ticket's mask, re-initialised (control) (10 epochs)"
    styles = [(s.line, s.marker) for s in (*strategies.STRATEGIES.values(),)]
    assert len(set(map(str, styles))) == len(styles), "one line style per strategy"
    with pytest.raises(ValueError, match=r"unknown strategy 'finetuning'; accepted: \['oneshot', 'finetune'"):
        strategies.strategy("finetuning")


def _unpruned_retraining(job, start, train_split):
    """A toy: pruned like fine-tuning, but its 'training' leaves the pruned weights as they are."""
    return pruning.prune(start, job.k, job.method, prune_last=job.prune_last)


TOY = Strategy("toy", "toy (pruned, not trained)", "prunes like fine-tuning and trains nothing", (0, (1, 3)), "v",
               _unpruned_retraining, retrains=True)


def test_a_strategy_registered_runs_through_the_sweep_the_tables_and_the_figures(monkeypatch, tmp_path):
    monkeypatch.setitem(strategies.STRATEGIES, TOY.name, TOY)
    assert parameters.check({"strategies": ["oneshot", "toy"]}, "03_weight_pruning")["strategies"] == ["oneshot", "toy"]
    splits = data.hold_out(data.load_dataset("mnist", DATA_DIR, train_size=1_000, test_size=300), 100)
    config = training.TrainConfig(hidden=(64, 32), epochs=1, batch_size=64, train_size=1_000, validation_size=100)
    model, _, _ = training.train_dense(config, splits, tmp_path / "cache", progress=False)
    dense = DenseModels({0: model}, {0: provenance.state_fingerprint(model.state_dict())}, config)
    results = sweep.strategy_sweep(dense, splits, "weight", [0.0, 50.0, 90.0], ["oneshot", "finetune", "toy"],
                                   Budget(1, 8e-3, 64), cache_dir=tmp_path / "cache").assign(dataset="mnist")
    toy = results[results.strategy == "toy"].set_index("k")
    oneshot = results[results.strategy == "oneshot"].set_index("k")
    assert list(toy.index) == [50.0, 90.0] and (toy.epochs == 1).all()
    assert toy.accuracy.equals(oneshot.accuracy.loc[[50.0, 90.0]]), "the toy only prunes: one-shot's accuracy"
    assert set(strategies.sweep_rows(results).strategy) == {"oneshot", "finetune", "toy"}
    findings = analysis.findings(results)
    assert list(findings.strategy) == ["oneshot", "finetune", "toy"]
    assert "**Weight pruning, toy (pruned, not trained) (1 epoch)**" in analysis.conclusions_markdown(findings)
    assert list(tables.mean_interval_table(results, "accuracy", "strategy").columns) == [
        "one-shot", "one-shot + fine-tuning", "toy (pruned, not trained)"]
    assert analysis.strategies_markdown(["oneshot", "finetune", "toy"]).endswith(
        "*toy (pruned, not trained)* prunes like fine-tuning and trains nothing. *one-shot + fine-tuning* trains at "
        "the learning rate chosen for each level on the validation split (below).")
    assert analysis.retraining_vs_oneshot(results).best_strategy.isin(["finetune", "toy"]).all()
    points = comparison.candidates(results)
    assert "weight pruning, toy (pruned, not trained) (1 epoch)" in set(points.label)
    figure = plotting.accuracy_vs_k(strategies.sweep_rows(results), title="toy")
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert "weight, toy (pruned, not trained)" in labels
    line = next(l for l in figure.axes[0].get_lines() if l.get_label() == "weight, toy (pruned, not trained)")
    assert line.get_marker() == "v"
    plotting.plt.close("all")
    cost = plotting.cost_plot(points.assign(measured_speedup=1.0), 4_000, float(oneshot.accuracy.loc[0.0]))
    assert "weight pruning, toy (pruned, not trained) (1 epoch)" in cost.axes[0].get_legend_handles_labels()[1]
    plotting.plt.close("all")
    # training compute, as a multiple of the dense training that one-shot spends alone
    spent = points.assign(measured_speedup=1.0, train_macs=points.strategy.map({"oneshot": 100.0, "finetune": 101.0,
                                                                                "toy": 100.0}))
    cost = plotting.cost_plot(spent, 4_000, float(oneshot.accuracy.loc[0.0]))
    assert len(cost.axes) == 3 and "in dense trainings" in cost.axes[1].get_xlabel()
    drawn = {line.get_label(): line.get_xdata() for line in cost.axes[1].get_lines()}
    assert len(drawn["weight pruning, one-shot"]) == 0, "one-shot spends nothing beyond the dense training"
    assert list(drawn["weight pruning, one-shot + fine-tuning (1 epoch)"]) == pytest.approx([0.01] * 2)
    plotting.plt.close("all")
