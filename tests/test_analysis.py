import math

import pandas as pd
import pytest

from helpers.analysis import conclusions_markdown, findings

KS = [0, 25, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 97.5, 99]


def frame(method, accuracies, seed=0):
    return pd.DataFrame({"method": method, "k": KS, "accuracy": accuracies, "seed": seed})


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
    assert "Unit pruning loses accuracy sooner than weight pruning" in text
    flipped = conclusions_markdown(findings(pd.concat([frame("weight", UNIT), frame("unit", WEIGHT)])))
    assert "Unlike the original study" in flipped


def test_missing_dense_level_is_an_error():
    with pytest.raises(ValueError, match="k = 0"):
        findings(frame("weight", WEIGHT).iloc[1:])
