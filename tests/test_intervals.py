"""Intervals over seeds and the paired differences that decide a win."""

import math

import pandas as pd
import pytest

from helpers.intervals import half_width, paired, plus_minus, summary, verdict


def test_the_interval_is_students_t_over_the_seeds():
    # three seeds, sd 0.01: sem 0.01 / sqrt(3), t(0.975, 2) = 4.303
    assert half_width([0.97, 0.98, 0.99]) == pytest.approx(4.3027 * 0.01 / math.sqrt(3), rel=1e-4)
    assert math.isnan(half_width([0.98])) and math.isnan(half_width([]))


def test_a_win_needs_the_paired_interval_to_exclude_zero():
    a = pd.Series([0.981, 0.982, 0.983], index=[0, 1, 2])
    b = pd.Series([0.980, 0.9825, 0.9825], index=[0, 1, 2])
    gap = paired(a, b)
    assert gap["n"] == 3 and gap["difference"] == pytest.approx(0.000333, abs=1e-6)
    assert verdict(gap["difference"], gap["ci"]) == "within noise"  # ahead in two seeds, behind in one
    steady = paired(a, a - 0.002)
    assert verdict(steady["difference"], steady["ci"]) == "higher"
    assert verdict(-0.01, 0.002) == "lower" and verdict(0.01, math.nan) == "within noise"
    assert paired(a, b.drop(2))["n"] == 2, "only the seeds both have"


def test_summaries_and_their_text():
    frame = pd.DataFrame({"k": [90, 90, 90, 99], "accuracy": [0.97, 0.98, 0.99, 0.9]})
    table = summary(frame, ["k"], "accuracy").set_index("k")
    assert table.loc[90, "n"] == 3 and math.isnan(table.loc[99, "ci"])
    assert plus_minus(0.9806, 0.0012) == "98.06 % ± 0.12" and plus_minus(0.9806, math.nan) == "98.06 %"
