"""Retraining learning rates chosen on the validation split every model of the study holds out from its training images.

The test set plays no part. The dense model of the first seed, trained without the validation
images (:func:`helpers.data.hold_out`) like every model of the study, is pruned at a few levels
(``tune_ks``), retrained there by every retraining strategy with every learning rate of a small
grid, and scored on the validation split. For each strategy and
level of the study, the learning rate used is the one that scored best at the nearest tuned
level, nearest in the logarithm of the fraction kept (100 - k): 98 % sits between 97.5 and 99,
not between 90 and 99. A tie in validation accuracy goes to the lower validation loss (a
10,000-image test resolves 0.01 points; 5,000 validation images do not, and the smaller rate
is no better guess). The longest retraining budget goes
to the strategy that scored best at the nearest tuned level (:func:`leaders`), and its learning
rate is chosen again, on the same validation split, at that length.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from . import provenance
from .data import Split
from .training import evaluate


def nearest_level(k: float, tuned: Sequence[float]) -> float:
    """The level of ``tuned`` nearest to ``k`` in log(100 - k), the log of the percentage kept."""
    return min(tuned, key=lambda t: (abs(math.log(100 - t) - math.log(100 - k)), t))


def choose(trials: pd.DataFrame) -> dict[str, dict[float, float]]:
    """From rows ``strategy, k, lr, val_accuracy, val_loss``: strategy -> tuned level -> the
    learning rate of the best validation accuracy there (of the lower validation loss on a tie)."""
    best = trials.sort_values(["strategy", "k", "val_accuracy", "val_loss", "lr"],
                              ascending=[True, True, False, True, True])
    first = best.groupby(["strategy", "k"], sort=False).head(1)
    return {s: {float(k): float(lr) for k, lr in zip(g.k, g.lr)} for s, g in first.groupby("strategy")}


def leaders(trials: pd.DataFrame, ks: Sequence[float]) -> dict[str, list[float]]:
    """For every level of ``ks``, the strategy of ``trials`` (rows ``strategy, k, lr,
    val_accuracy, val_loss`` of retraining strategies) that scored best on validation at the tuned
    level nearest to it, at its best learning rate; a tie goes to the lower validation loss, then
    to the strategy tried first.

    Returns strategy -> the levels of ``ks`` it leads, in the order of ``ks``."""
    tuned = sorted(set(trials["k"]))
    best = trials.sort_values(["val_accuracy", "val_loss"], ascending=[False, True], kind="stable").groupby("k").head(1)
    leader = dict(zip(best["k"], best["strategy"]))
    chosen: dict[str, list[float]] = {}
    for k in ks:
        chosen.setdefault(leader[nearest_level(k, tuned)], []).append(k)
    return chosen


def lr_for(chosen: Mapping[str, Mapping[float, float]], strategy: str, k: float) -> float:
    """The learning rate ``strategy`` retrains with at level ``k``: the one chosen at the nearest
    tuned level (:func:`nearest_level`)."""
    by_level = chosen[strategy]
    return by_level[nearest_level(k, list(by_level))]


def trial_record(start_fingerprint: str, validation: Split) -> dict:
    """What a validation score depends on besides the retraining's own record."""
    return {"tuning_model": start_fingerprint, "validation_data": validation.fingerprint,
            "versions": provenance.versions()}


def score(model, validation: Split) -> dict[str, float]:
    """Validation ``val_accuracy`` and ``val_loss`` of a retrained network."""
    row = evaluate(model, validation)
    return {"val_accuracy": row["accuracy"], "val_loss": row["loss"]}
