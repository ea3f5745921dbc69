import math

import pandas as pd
import pytest

from helpers import analysis
from helpers.analysis import conclusions_markdown, findings, targets, targets_markdown
from helpers.comparison import (against_scratch, against_scratch_markdown, answer_markdown, budget_table, equal_cost,
                                equal_cost_markdown)

KS = [0, 25, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 97.5, 99]


def frame(method, accuracies, seed=0):
    # validation ranks as test does here: what these tests check is how the choice is reported
    return pd.DataFrame({"method": method, "k": KS, "accuracy": accuracies, "val_accuracy": accuracies, "seed": seed})


WEIGHT = [0.98, 0.98, 0.979, 0.978, 0.977, 0.975, 0.973, 0.972, 0.96, 0.95, 0.90, 0.60, 0.30]
UNIT = [0.98, 0.978, 0.975, 0.95, 0.93, 0.90, 0.85, 0.70, 0.40, 0.30, 0.20, 0.12, 0.10]


def test_findings_are_computed_from_the_curves():
    table = findings(pd.concat([frame("weight", WEIGHT), frame("unit", UNIT)])).set_index("method")
    assert table.loc["weight", "flat_to"] == 85 and table.loc["weight", "degrades_at"] == 90
    assert table.loc["weight", "halves_at"] == 99
    assert table.loc["unit", "flat_to"] == 50 and table.loc["unit", "halves_at"] == 90
    assert table.loc["unit", "accuracy_at_max_k"] == 0.10
    assert table.loc["weight", "original_flat_to"] == 80


def test_a_recovery_after_a_drop_does_not_extend_the_flat_region():
    bumpy = [0.98, 0.98, 0.95, 0.98, *WEIGHT[4:]]
    assert findings(frame("weight", bumpy)).flat_to.iloc[0] == 25


def test_seeds_are_averaged_before_conclusions():
    a = frame("weight", WEIGHT, seed=0)
    b = frame("weight", [x - 0.02 if k == 85 else x for k, x in zip(KS, WEIGHT)], seed=1)
    assert findings(pd.concat([a, b])).flat_to.iloc[0] == 80  # mean at 85 is 0.962 < 0.97


def test_no_halving_is_nan_and_said():
    table = findings(frame("weight", [0.98] * 13))
    assert math.isnan(table.halves_at.iloc[0])
    assert "never falls below half" in conclusions_markdown(table)


def test_conclusions_state_the_computed_numbers():
    text = conclusions_markdown(findings(pd.concat([frame("weight", WEIGHT), frame("unit", UNIT)])))
    assert "up to k = 85 %" in text and "up to k = 50 %" in text
    assert "One-shot unit pruning loses accuracy sooner than weight pruning" in text
    flipped = conclusions_markdown(findings(pd.concat([frame("weight", UNIT), frame("unit", WEIGHT)])))
    assert "Unlike the original study" in flipped


def test_missing_dense_level_is_an_error():
    with pytest.raises(ValueError, match="k = 0"):
        findings(frame("weight", WEIGHT).iloc[1:])


def test_findings_per_strategy_start_every_curve_at_the_dense_model():
    oneshot = pd.concat([frame("weight", WEIGHT), frame("unit", UNIT)]).assign(strategy="oneshot", ranking="layer")
    tuned = frame("weight", [0.98] * 12 + [0.975]).assign(strategy="finetune", ranking="layer")
    tuned = tuned[tuned.k > 0]  # strategies other than one-shot have no k = 0 row of their own
    glob = frame("weight", [0.1] * 13).assign(strategy="oneshot", ranking="global")
    table = findings(pd.concat([oneshot, tuned, glob])).set_index(["method", "strategy"])
    assert table.loc[("weight", "oneshot"), "flat_to"] == 85  # global rows are left out
    assert table.loc[("weight", "finetune"), "flat_to"] == 99
    assert table.loc[("weight", "finetune"), "dense_accuracy"] == 0.98
    assert math.isnan(table.loc[("weight", "finetune"), "original_flat_to"])
    assert ("unit", "finetune") not in table.index


def test_targets_say_whether_each_was_reached():
    oneshot = pd.concat([frame("weight", WEIGHT, s) for s in (0, 1)] + [frame("unit", UNIT, s) for s in (0, 1)])
    tuned = frame("weight", [0.985] * 13).assign(strategy="finetune")
    table = targets(pd.concat([oneshot.assign(strategy="oneshot"), tuned])).set_index(["method", "k"])
    assert not table.loc[("dense", 0), "reached"] and table.loc[("dense", 0), "seeds"] == 2
    assert table.loc[("weight", 99), "best_strategy"] == "finetune"
    assert table.loc[("weight", 99), "reached"]
    assert table.loc[("unit", 90), "best_accuracy"] == 0.40 and not table.loc[("unit", 90), "reached"]
    text = targets_markdown(table.reset_index())
    assert "does **not** reach the target of 98.5%" in text
    assert "k = 90 %" in text and "No retraining ran at this level." in text  # why a target was missed
    longer = pd.concat([oneshot.assign(strategy="oneshot", epochs=0),
                        frame("unit", [0.9] * 13).assign(strategy="finetune", epochs=3)])
    text = targets_markdown(targets(longer))
    assert "The longest retraining run at this level is 3 epochs, of the 10 the targets allow" in text
    longest = pd.concat([oneshot.assign(strategy="oneshot", epochs=0),
                         frame("unit", [0.98] * 13).assign(strategy="finetune", epochs=10)])
    text = targets_markdown(targets(longest))
    assert "Even the longest budget the targets allow falls short, by 0.30 points" in text  # unit k=90: 98.3 %


def test_prose_shows_values_and_reads_as_a_sentence_when_nothing_was_chosen():
    from helpers.analysis import longer_budget_markdown, stages_markdown

    assert longer_budget_markdown([97.5, 99.0], ["oneshot", "finetune", "gradual"], 3, 1) == (
        "One-shot + fine-tuning and gradual with 3 epochs of training instead of 1, at k = 97.5 % and 99 % "
        "(mean ± half-width of the 95 % interval over seeds); one-shot for reference.")
    assert longer_budget_markdown([99.0], ["oneshot", "finetune", "scratch", "lrr"], 3, 1) == (
        "One-shot + fine-tuning with 3 epochs of training instead of 1, at k = 99 % (mean ± half-width of the 95 % interval over seeds); "
        "the controls at their own budgets and one-shot for reference.")
    longest = longer_budget_markdown([97.5, 99.0], ["oneshot", "finetune", "gradual"], 3, 1,
                                     {"finetune": {99.0: 1e-3, 97.5: 8e-3}}, 10)
    assert longest.endswith("At k = 97.5 % and 99 %, one-shot + fine-tuning, the strategy that scored best on the "
                            "validation split at the nearest tuned level, also retrained for 10 epochs, at the "
                            "learning rate validation chose for that length (0.008 at k = 97.5 %, 0.001 at k = 99 %).")
    assert longer_budget_markdown([], ["oneshot", "finetune"], 3, 1) == \
        "This run has no longer retraining budget: no level was chosen for it."
    assert "target_ks" not in longer_budget_markdown([], ["oneshot"], 3, 1)
    assert stages_markdown({"dense": 0, "one-shot": 0}, 90.0, 0, "weight").endswith("so there is no after.")
    assert "k = 92.5 %" in stages_markdown({"dense": 0, "one-shot": 0, "fine-tuned": 0}, 92.5, 1, "unit")
    assert "surviving neurons" in stages_markdown({"dense": 0}, 90.0, 0, "unit")


def test_findings_table_has_no_raw_floats_or_nan():
    from helpers.tables import findings_table

    table = findings_table(findings(pd.concat([frame("weight", WEIGHT), frame("unit", [0.98] * 13)])))
    text = table.to_string()
    assert "nan" not in text.lower() and "0.98" not in text
    assert table.loc[("weight", "one-shot"), "flat (within tolerance) up to"] == "85 %"
    assert table.loc[("unit", "one-shot"), "below half the dense accuracy from"] == "—"
    assert table.loc[("weight", "one-shot"), "dense accuracy"] == "98.00 %"


def test_a_non_monotone_curve_is_summarised_by_where_it_is_within_and_where_it_dips(tmp_path):
    """The Fashion-MNIST case: below dense - 1 point at k = 25 %, within it from 50 to 95 %.
    'The first level that drops' would read as failing everywhere; the sentence says where it
    is within, and where it dips, also after a round trip through the CSV file."""
    dips_once = [0.90, 0.885, 0.895, 0.894, 0.893, 0.893, 0.892, 0.892, 0.891, 0.891, 0.8905, 0.85, 0.80]
    table = findings(frame("weight", dips_once))
    assert table.flat_to.iloc[0] == 0 and table.last_within.iloc[0] == 95 and table.dips.iloc[0] == "25"
    assert table.drops_after.iloc[0] == 97.5
    table.to_csv(tmp_path / "levels.csv", index=False)
    for summary in (table, pd.read_csv(tmp_path / "levels.csv")):
        text = conclusions_markdown(summary)
        assert "at every level up to k = 95 % except k = 25 %" in text
        assert "the first level beyond that drops further is k = 97.5 %" in text
        assert "at the first tested level" not in text


def results_for_costs():
    """Two methods, three strategies and the control at a few levels, two seeds, with the
    remaining weights each keeps."""
    rows = []
    cases = {  # (method, strategy, epochs): {k: (accuracy, remaining weights)}
        ("weight", "oneshot", 0): {0: (0.98, 1000), 90: (0.97, 100), 99: (0.50, 10)},
        ("weight", "finetune", 1): {90: (0.979, 100), 99: (0.95, 10)},
        ("unit", "oneshot", 0): {0: (0.98, 1000), 90: (0.40, 20)},
        ("unit", "finetune", 1): {90: (0.965, 20)},
        ("unit", "scratch", 10): {90: (0.975, 20)},
    }
    for (method, strategy, epochs), levels in cases.items():
        for k, (accuracy, weights) in levels.items():
            for seed, noise in ((0, -0.001), (1, 0.001)):
                rows.append({"dataset": "mnist", "seed": seed, "method": method, "strategy": strategy,
                             "ranking": "layer", "k": float(k), "epochs": epochs, "accuracy": accuracy + noise,
                             "val_accuracy": accuracy - noise, "remaining_weights": weights, "macs": weights})
    efficiency = pd.DataFrame({"method": ["weight", "weight", "unit"], "k": [90.0, 99.0, 90.0], "batch": 256,
                               "measured_speedup": [1.5, 6.0, 12.0]})
    return pd.DataFrame(rows), efficiency


def test_equal_cost_picks_the_most_accurate_network_within_each_budget():
    results, efficiency = results_for_costs()
    table = equal_cost(results, efficiency).set_index(["budget_kind", "factor"])
    # at most 1000/10 = 100 weights: weight k=90 fine-tuned (0.979) beats the unit control (0.975)
    assert table.loc[("weights", 10), "method"] == "weight" and table.loc[("weights", 10), "k"] == 90
    assert table.loc[("weights", 10), "accuracy"] == pytest.approx(0.979)
    assert table.loc[("weights", 10), "runner_up"] == "unit pruning, trained from scratch, Scratch-E (control) (10 epochs)"
    # at most 40 weights: only unit k=90 and weight k=99 fit; the scratch control wins
    assert table.loc[("weights", 25), "strategy"] == "scratch"
    # 10x measured speed-up: only unit k=90 is that fast
    assert table.loc[("latency", 10), "method"] == "unit"
    assert table.loc[("latency", 5), "accuracy"] == pytest.approx(0.975)
    text = equal_cost_markdown(equal_cost(results, efficiency))
    assert "With at most 100 weights (1/10 of the dense network), validation ranks first **weight pruning" in text


def test_budget_table_gives_each_strategy_its_best_level_within_each_budget():
    results, efficiency = results_for_costs()
    table = budget_table(results, efficiency)
    assert table.loc["weight pruning, one-shot + fine-tuning (1 epoch)", "1/10 of the weights"] == pytest.approx(0.979)
    assert table.loc["weight pruning, one-shot + fine-tuning (1 epoch)", "1/100 of the weights"] == pytest.approx(0.95)
    assert math.isnan(table.loc["weight pruning, one-shot", "10× faster"])
    assert table.loc["unit pruning, one-shot + fine-tuning (1 epoch)", "10× faster"] == pytest.approx(0.965)


def test_pruning_against_scratch_reports_the_difference_and_who_wins():
    results, _ = results_for_costs()
    control = against_scratch(results).set_index(["method", "k"])
    row = control.loc[("unit", 90.0)]
    assert row.pruned_strategy == "finetune" and row.difference == pytest.approx(-0.010)
    assert row.verdict == "control"  # 1 point apart, seeds 0.14 points apart
    assert ("Unit pruning against trained from scratch, Scratch-E (control): training from scratch beats pruning at "
            "k = 90 % (-1.00 points ± 0.00)") in against_scratch_markdown(against_scratch(results))
    answer = answer_markdown(results, results_for_costs()[1])
    assert "The dense network reaches 98.00 % ± 1.27 on test (1,000 weights)" in answer
    # the smallest network within a point is the control: a pruned shape is worth it either way
    assert ("the fewest weights are kept by **unit pruning, trained from scratch, Scratch-E (control) (10 epochs)** at "
            "k = 90 %: 20 weights (50× fewer), 97.50 % ± 1.27 on test") in answer
    assert "The largest measured speed-up within that point is **12.0×** (batch 256)" in answer
    assert "- unit pruning against trained from scratch, Scratch-E: loses at k = 90 %." in answer


def test_a_relative_target_counts_from_the_dense_accuracy():
    oneshot = frame("weight", [0.90] + [0.895] * 12).assign(strategy="oneshot", ranking="layer")
    table = targets(oneshot, "fashion_mnist").set_index(["method", "k"])
    assert table.loc[("weight", 97.5), "target"] == pytest.approx(0.89) and table.loc[("weight", 97.5), "reached"]
    assert targets(oneshot, "no targets here").empty


def test_no_target_level_among_the_results_still_gives_a_table_with_its_header(tmp_path):
    """A small run whose levels miss every target (Fashion-MNIST's 97.5 and 75 %): the file the
    pipeline merges must read back, header and all."""
    from helpers import io

    oneshot = frame("weight", [0.90] * 13).assign(strategy="oneshot", ranking="layer")
    table = targets(oneshot[oneshot.k.isin([0, 50, 90, 99])], "fashion_mnist")
    assert table.empty and list(table.columns)[:4] == ["method", "k", "target", "best_strategy"]
    io.write_csv(table, tmp_path / "targets.csv")
    assert list(io.read_csv(tmp_path / "targets.csv").columns) == list(table.columns)


def test_retraining_that_falls_below_one_shot_is_named():
    from helpers.analysis import retraining_vs_oneshot, retraining_vs_oneshot_markdown

    oneshot = frame("weight", WEIGHT).assign(strategy="oneshot", ranking="layer", epochs=0)
    tuned = frame("weight", [w + 0.01 for w in WEIGHT]).assign(strategy="finetune", ranking="layer", epochs=1)
    tuned.loc[tuned.k == 25, "accuracy"] = 0.975  # 0.5 point below one-shot at k = 25 %
    table = retraining_vs_oneshot(pd.concat([oneshot, tuned[tuned.k > 0]]))
    assert list(table[table.hurts].k) == [25]
    assert retraining_vs_oneshot_markdown(table) == ("At 1 of 12 levels and methods the best retraining is more "
                                                     "than 0.1 point below one-shot pruning: weight k = 25 % "
                                                     "(-0.50 points).")


def test_a_slow_down_is_never_written_faster_and_other_datasets_quote_no_mnist_figure():
    assert "faster" not in analysis._speed(0.851) and "0.85×" in analysis._speed(0.851)
    assert "faster" in analysis._speed(1.33)
    history = pd.DataFrame({"epoch": [1, 1], "test_accuracy": [0.899, 0.8991], "seconds": [5.0, 5.2]})
    assert "98.61" not in analysis.dense_markdown(history, "fashion_mnist")
    assert "98.61" in analysis.dense_markdown(history, "mnist")
    rows = pd.DataFrame({"dataset": "fashion_mnist", "method": "weight", "strategy": "oneshot", "ranking": "layer",
                         "k": [0.0, 50.0, 90.0], "epochs": 0, "accuracy": [0.9, 0.9, 0.5]})
    table = analysis.findings(rows)
    assert table.original_flat_to.isna().all()
    assert "original study" not in analysis.conclusions_markdown(table)
    assert not analysis.findings(rows.assign(dataset="mnist")).original_flat_to.isna().all()


def test_training_compute_counts_the_dense_training_and_every_round_before():
    from helpers.comparison import with_training_compute
    rows = [{"seed": 0, "method": "weight", "ranking": "layer", "strategy": "oneshot", "k": 0.0, "epochs": 0,
             "remaining_weights": 1000},
            {"seed": 0, "method": "weight", "ranking": "layer", "strategy": "finetune", "k": 90.0, "epochs": 2,
             "remaining_weights": 100},
            {"seed": 0, "method": "weight", "ranking": "layer", "strategy": "gradual", "k": 90.0, "epochs": 2,
             "remaining_weights": 100}]
    rows += [{"seed": 0, "method": "weight", "ranking": "layer", "strategy": "ticket", "k": k, "epochs": 10 * (i + 1),
              "remaining_weights": w} for i, (k, w) in enumerate([(40.0, 600), (64.0, 360), (90.0, 100)])]
    rows += [{"seed": 0, "method": "weight", "ranking": "layer", "strategy": "reinit", "k": 90.0, "epochs": 30,
              "remaining_weights": 100}]
    macs = with_training_compute(pd.DataFrame(rows), 10, 50).set_index(["strategy", "k"]).train_macs
    dense = 10 * 3 * 50 * 1000
    assert macs["oneshot", 0.0] == dense
    assert macs["finetune", 90.0] == dense + 2 * 150 * 100
    assert macs["gradual", 90.0] == dense + 2 * 150 * (1000 + 3 * 100) / 4
    assert macs["ticket", 90.0] == dense + 10 * 150 * (600 + 360 + 100)
    assert macs["reinit", 90.0] == dense + 10 * 150 * (600 + 360) + 10 * 150 * 100  # the ticket's rounds, then its own
    # a seed beyond the sweep's runs only the longer budgets: no dense row of its own
    later = {"seed": 3, "method": "weight", "ranking": "layer", "strategy": "finetune", "k": 90.0, "epochs": 3,
             "remaining_weights": 100}
    assert with_training_compute(pd.DataFrame([*rows, later]), 10, 50).train_macs.iloc[-1] == dense + 3 * 150 * 100


def test_the_ticket_is_set_against_its_mask_re_initialised_seed_by_seed():
    from helpers.comparison import ticket_against_reinit, ticket_against_reinit_markdown
    rows = [{"seed": s, "method": "weight", "ranking": "layer", "strategy": st, "k": 99.7, "epochs": 100,
             "accuracy": a + 0.001 * s, "remaining_weights": 9152}
            for s in (0, 1, 2) for st, a in (("ticket", 0.975), ("reinit", 0.955))]
    table = ticket_against_reinit(pd.DataFrame(rows))
    assert table.iloc[0].difference == pytest.approx(0.02) and table.iloc[0].verdict == "higher"
    assert "Frankle & Carbin's finding reproduces" in ticket_against_reinit_markdown(table)


def test_a_frontier_target_counts_only_networks_run_on_five_seeds_or_more():
    from helpers.comparison import TARGET_SEEDS, frontier_targets, frontier_targets_markdown

    def rows(strategy, epochs, accuracy, seeds):
        return [{"seed": s, "method": "weight", "ranking": "layer", "strategy": strategy, "k": k, "epochs": e,
                 "accuracy": a, "val_accuracy": a, "remaining_weights": w, "macs": w}
                for s in range(seeds) for k, e, a, w in ((0.0, 0, 0.985, 2_386_000), (99.2, epochs, accuracy, 19_000))]
    results = pd.DataFrame([*rows("oneshot", 0, 0.2, TARGET_SEEDS), *rows("lrr", 100, 0.986, 3),
                            *rows("finetune", 10, 0.981, TARGET_SEEDS)])
    table = frontier_targets(results, "mnist").set_index("budget")
    assert table.loc[21_300, "seeds"] == TARGET_SEEDS and table.loc[21_300, "accuracy"] == pytest.approx(0.981)
    assert not table.loc[21_300, "reached"]  # the better network ran on 3 seeds: it does not count
    assert "no network of this run on 5 seeds or more fits" in frontier_targets_markdown(table.reset_index())


def test_the_landing_page_says_what_ran_with_the_fewest_and_most_seeds_of_a_network():
    from helpers.report import _study
    rows = [{"method": "weight", "ranking": "layer", "strategy": "finetune", "k": k, "epochs": e, "seed": s}
            for k, e, seeds in ((90.0, 1, 3), (99.0, 3, 5)) for s in range(seeds)]
    rows += [{"method": "weight", "ranking": "lamp", "strategy": "finetune", "k": 90.0, "epochs": 1, "seed": 0}]
    assert _study(pd.DataFrame(rows)) == ("What ran here. Weight pruning: one-shot + fine-tuning (3 to 5 seeds). "
                                          "Rankings beside the per-layer one: LAMP (layer-adaptive).")
