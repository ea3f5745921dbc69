"""Retraining after pruning: fine-tuning with a fixed mask, and gradual magnitude pruning.

Every training here goes through :func:`helpers.training.train` with fixed masks, so
pruned weights stay exactly zero through every optimiser step: their gradients are zeroed
before the step (Adam's moments for them therefore stay zero) and the weights are re-masked
after it. No function changes the model it is given: each works on a deep copy.

Re-pruning a partly pruned model keeps its pruned set: its pruned weights (or neuron rows)
are exact zeros, hence the smallest |w| (or row norms), so a higher level removes them again
plus the smallest survivors. Schedules with non-decreasing levels therefore grow the pruned
set monotonically, and the last step leaves exactly ``round(k / 100 * n)`` pruned per layer,
the count of :mod:`helpers.pruning`.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .checks import non_negative_int, positive_finite, positive_int
from .data import Split
from .pruning import check_k, masks_of, method as pruning_method, prune_in_place
from .training import train


# --- argument checks -------------------------------------------------------------------


def _check_training(epochs, lr, batch_size, seed) -> None:
    positive_int("epochs", epochs)
    positive_finite("lr", lr)
    positive_int("batch_size", batch_size)
    non_negative_int("seed", seed)


def _call_seeds(seed: int, n: int) -> list[int]:
    """``n`` seeds for successive ``train`` calls, drawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return [int(s) for s in torch.randint(0, 2**31 - 1, (n,), generator=generator)]


# --- fine-tuning -----------------------------------------------------------------------


def finetune(
    pruned_model: nn.Module,
    train_split: Split,
    eval_splits: Mapping[str, Split],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    prune_last: bool = False,
    progress: bool = False,
    description: str = "fine-tuning",
) -> tuple[nn.Module, pd.DataFrame]:
    """Retrain a pruned network with its mask held fixed (Han et al. 2015).

    The mask is ``masks_of(pruned_model, prune_last)``: the zero weights of the prunable
    layers (all ``nn.Linear`` but the last, unless ``prune_last``) stay exactly zero; every
    other weight, including those of a layer left out of the mask, is trained. Training is
    :func:`helpers.training.train` (Adam, cosine decay from ``lr`` to 0 over ``epochs``).

    Returns ``(model, history)``: a fine-tuned deep copy (``pruned_model`` is unchanged) and
    the per-epoch history of :func:`helpers.training.train`.
    """
    _check_training(epochs, lr, batch_size, seed)
    model = copy.deepcopy(pruned_model)
    masks = masks_of(model, prune_last)
    history = train(
        model, train_split, eval_splits, epochs=epochs, batch_size=batch_size, lr=lr,
        seed=seed, masks=masks, progress=progress, description=description,
    )
    return model, history


# --- schedules -------------------------------------------------------------------------


def cubic_schedule(k_final: float, n_steps: int, k_initial: float = 0.0) -> list[float]:
    """Sparsity levels (percent) of the ``n_steps`` pruning steps of Zhu & Gupta (2017).

    Step ``t = 1 .. n`` prunes to ``k_t = k_f + (k_i - k_f) (1 - t / n)^3``: fast at first,
    while many redundant weights remain, then slower; the last level is exactly ``k_final``.
    The levels never decrease. (``t = 0``, the level ``k_initial`` the model starts from,
    is not a step.)
    """
    k_final, k_initial = check_k(k_final), check_k(k_initial)
    n_steps = positive_int("n_steps", n_steps)
    if k_initial > k_final:
        raise ValueError(f"k_initial must be in [0, k_final={k_final}], got {k_initial!r}")
    levels = [k_final + (k_initial - k_final) * (1.0 - t / n_steps) ** 3 for t in range(1, n_steps + 1)]
    levels[-1] = k_final
    return levels


# --- gradual pruning -------------------------------------------------------------------


def _history_rows(history: pd.DataFrame, **columns) -> pd.DataFrame:
    history = history.rename(columns={"epoch": "call_epoch"})
    for i, (name, value) in enumerate(columns.items()):
        history.insert(i, name, value)
    return history


def gradual_prune(
    model: nn.Module,
    train_split: Split,
    eval_splits: Mapping[str, Split],
    *,
    k: float,
    method: str = "weight",
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    prune_every: int = 50,
    ramp: float = 0.5,
    k_initial: float = 0.0,
    prune_last: bool = False,
    progress: bool = False,
) -> tuple[nn.Module, pd.DataFrame]:
    """Gradual magnitude pruning (Zhu & Gupta 2017) of a trained model during ``epochs``
    epochs of training.

    Pruning steps fall every ``prune_every`` optimiser steps (``prune_every * batch_size``
    training examples) from the start of training until the fraction ``ramp`` of it; step
    ``t`` prunes each prunable layer to the ``t``-th level of :func:`cubic_schedule`, so the
    last one reaches exactly ``k`` (``round(k / 100 * n)`` weights, or neurons, per layer).
    Between steps the model trains with that mask fixed; after the last step, it trains at
    the final mask for the rest of the ``epochs`` epochs. ``ramp=0`` is one-shot pruning
    followed by fine-tuning.

    Each pruning step trains through one :func:`helpers.training.train` call, which starts a
    new Adam optimiser and its own cosine decay; that call's peak learning rate follows a
    cosine envelope over the whole training, ``lr * (1 + cos(pi * done / total)) / 2``.
    The data are visited in one seeded random order per epoch; the final phase is the rest
    of the epoch in which it starts, then whole epochs.

    Returns ``(model, history)``: the pruned, trained deep copy (``model`` is unchanged) and
    one row per epoch of every ``train`` call, with the call's index ``call``, ``phase``
    (``"ramp"`` or ``"final"``), level ``k``, peak ``lr``, ``epoch`` (training epochs done,
    fractional) and the columns of :func:`helpers.training.train` (its ``epoch`` renamed
    ``call_epoch``).
    """
    k = check_k(k)
    mask_fn = pruning_method(method).mask
    _check_training(epochs, lr, batch_size, seed)
    prune_every = positive_int("prune_every", prune_every)
    if isinstance(ramp, bool) or not isinstance(ramp, numbers.Real) or not 0.0 <= ramp < 1.0:
        raise ValueError(f"ramp must be a fraction of training in [0, 1), got {ramp!r}")
    k_initial = check_k(k_initial)
    if k_initial > k:
        raise ValueError(f"k_initial must be in [0, k={k}], got {k_initial!r}")

    n = len(train_split)
    total = epochs * n
    segment = prune_every * batch_size
    n_steps = int(ramp * total // segment) + 1
    levels = cubic_schedule(k, n_steps, k_initial)
    seeds = _call_seeds(seed, n_steps + 2)
    order_generator = torch.Generator().manual_seed(seed)
    stream = torch.cat([torch.randperm(n, generator=order_generator) for _ in range(epochs)])

    # Calls: (start, stop, level, phase, whole_epochs); whole_epochs > 0 trains on the full split.
    calls = [(i * segment, (i + 1) * segment, level, "ramp", 0) for i, level in enumerate(levels[:-1])]
    start = (n_steps - 1) * segment
    if start % n:
        epoch_end = (start // n + 1) * n
        calls.append((start, epoch_end, k, "final", 0))
        start = epoch_end
    if start < total:
        calls.append((start, total, k, "final", (total - start) // n))

    work = copy.deepcopy(model)
    frames = []
    current = None
    for index, (begin, end, level, phase, whole_epochs) in enumerate(
        tqdm(calls, desc=f"gradual {method} k={k:g}", disable=not progress, unit="call")
    ):
        if level != current:
            _, masks = prune_in_place(work, level, mask_fn, prune_last)
            current = level
        peak_lr = lr * 0.5 * (1.0 + math.cos(math.pi * begin / total))
        if whole_epochs:
            split, call_epochs = train_split, whole_epochs
        else:
            idx = stream[begin:end]
            split, call_epochs = Split(train_split.images[idx], train_split.labels[idx]), 1
        history = train(
            work, split, eval_splits, epochs=call_epochs, batch_size=batch_size, lr=peak_lr,
            seed=seeds[index], masks=masks, progress=False,
        )
        done = (begin + history["epoch"] * len(split)) / n
        frames.append(_history_rows(history, call=index, phase=phase, k=level, lr=peak_lr, epoch=done))
    return work, pd.concat(frames, ignore_index=True)
