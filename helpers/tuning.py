"""Retraining learning rates chosen on a validation split held out from the training images.

The test set plays no part. A *tuning model* is the dense recipe (the dense models' own
configuration) trained on the training images minus a held-out validation split; it is
pruned at a few levels (``tune_ks``), retrained there by every retraining strategy with every
learning rate of a small grid, and scored on the validation split. For each strategy and
level of the study, the learning rate used is the one that scored best at the nearest tuned
level, nearest in the logarithm of the fraction kept (100 - k): 98 % sits between 97.5 and 99,
not between 90 and 99. Ties go to the smaller learning rate. The longest retraining budget goes
to the strategy that scored best at the nearest tuned level (:func:`leaders`), and its learning
rate is chosen again, on the same validation split, at that length.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pandas as pd

from . import provenance
from .data import Split, validation_split
from .model import MLP
from .training import TrainConfig, dense_path, evaluate, train_dense

VALIDATION_SEED = 0
"""Seed of the permutation that holds the validation images out (:func:`helpers.data.validation_split`)."""


def tuning_data(train: Split, validation_size: int) -> dict[str, Split]:
    """``{"train": training images minus the validation split, "validation": validation_size
    images held out from train}``; the same images for every method and run."""
    rest, validation = validation_split(train, validation_size, VALIDATION_SEED)
    return {"train": rest, "validation": validation}


def tuning_model(recipe: TrainConfig, data: Mapping[str, Split], cache_dir: str | os.PathLike, *,
                 progress: bool = False) -> MLP:
    """The dense recipe trained on ``data["train"]`` (validation images held out): the model the
    learning rates are chosen on (cached in ``cache_dir`` like every dense model)."""
    return train_dense(*_tuning_recipe(recipe, data), cache_dir, progress=progress)[0]


def _tuning_recipe(recipe: TrainConfig, data: Mapping[str, Split]) -> tuple[TrainConfig, dict[str, Split]]:
    return replace(recipe, train_size=None), {"train": data["train"], "test": data["validation"]}


def tuning_model_path(recipe: TrainConfig, data: Mapping[str, Split], cache_dir: str | os.PathLike):
    """Where :func:`tuning_model` caches the tuning model of ``recipe`` and ``data``."""
    return dense_path(*_tuning_recipe(recipe, data), cache_dir)


def nearest_level(k: float, tuned: Sequence[float]) -> float:
    """The level of ``tuned`` nearest to ``k`` in log(100 - k), the log of the percentage kept."""
    return min(tuned, key=lambda t: (abs(math.log(100 - t) - math.log(100 - k)), t))


def choose(trials: pd.DataFrame) -> dict[str, dict[float, float]]:
    """From rows ``strategy, k, lr, val_accuracy``: strategy -> tuned level -> the learning rate
    of the best validation accuracy there (the smaller one on a tie)."""
    best = trials.sort_values(["strategy", "k", "val_accuracy", "lr"], ascending=[True, True, False, True])
    first = best.groupby(["strategy", "k"], sort=False).head(1)
    return {s: {float(k): float(lr) for k, lr in zip(g.k, g.lr)} for s, g in first.groupby("strategy")}


def leaders(trials: pd.DataFrame, ks: Sequence[float]) -> dict[str, list[float]]:
    """For every level of ``ks``, the strategy of ``trials`` (rows ``strategy, k, lr,
    val_accuracy`` of retraining strategies) that scored best on validation at the tuned level
    nearest to it, at its best learning rate; a tie goes to the strategy tried first.

    Returns strategy -> the levels of ``ks`` it leads, in the order of ``ks``."""
    tuned = sorted(set(trials["k"]))
    best = trials.sort_values("val_accuracy", ascending=False, kind="stable").groupby("k").head(1)
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


def trial_record(tuned_fingerprint: str, validation: Split) -> dict:
    """What a validation score depends on besides the retraining's own record."""
    return {"tuning_model": tuned_fingerprint, "validation_data": validation.fingerprint,
            "versions": provenance.versions()}


def score(model, validation: Split) -> dict[str, float]:
    """Validation ``val_accuracy`` and ``val_loss`` of a retrained tuning model."""
    row = evaluate(model, validation)
    return {"val_accuracy": row["accuracy"], "val_loss": row["loss"]}
