"""Retraining after pruning: fine-tuning with a fixed mask, gradual magnitude pruning, and the controls (from scratch, iterative with rewinding).

Every training here goes through :func:`helpers.training.train` with masks, so
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
from collections.abc import Callable, Mapping

import pandas as pd
import torch
from torch import nn

from .checks import non_negative_int, positive_finite, positive_int
from .data import Split
from .compact import compact_units, restore_units
from .model import MLP, linear_layers
from .pruning import Masks, apply_masks, check_k, masks_of, method as pruning_method, prune_in_place
from .sparse import with_sparse_layers, without_sparse_layers
from .training import train


# --- argument checks -------------------------------------------------------------------


def _check_training(epochs, lr, batch_size, seed) -> None:
    positive_int("epochs", epochs)
    positive_finite("lr", lr)
    positive_int("batch_size", batch_size)
    non_negative_int("seed", seed)


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
    csr: bool = False,
    progress: bool = False,
    description: str = "fine-tuning",
) -> tuple[nn.Module, pd.DataFrame]:
    """Retrain a pruned network with its mask held fixed (Han et al. 2015).

    The mask is ``masks_of(pruned_model, prune_last)``: the zero weights of the prunable
    layers (all ``nn.Linear`` but the last, unless ``prune_last``) stay exactly zero; every
    other weight, including those of a layer left out of the mask, is trained. Training is
    :func:`helpers.training.train` (Adam, cosine decay from ``lr`` to 0 over ``epochs``),
    in the form :func:`training_form` gives (``csr``: the prunable layers in CSR).

    Returns ``(model, history)``: a fine-tuned deep copy (``pruned_model`` is unchanged) and
    the per-epoch history of :func:`helpers.training.train`.
    """
    _check_training(epochs, lr, batch_size, seed)
    return _train_compact(pruned_model, lambda model: model, train_split, eval_splits, epochs=epochs, lr=lr,
                          batch_size=batch_size, seed=seed, prune_last=prune_last, csr=csr, progress=progress,
                          description=description)


def training_form(model: MLP, prune_last: bool = False, csr: bool = False,
                  initialise: Callable[[MLP], MLP] = lambda small: small) -> tuple[MLP, Masks]:
    """The network that retraining the pruned ``model`` with its mask fixed trains, and the
    masks that training holds: :func:`helpers.compact.compact_units` of ``model``, whose dead
    neurons (zero row, or zero column in the next layer) neither affect the loss nor receive a
    gradient, so that dropping them gives masked training's result up to summation order at a
    fraction of the cost (25x fewer multiply-adds for unit pruning at k = 90 %), passed through
    ``initialise`` (the scratch control's fresh weights); with ``csr``, its prunable layers are
    :class:`helpers.sparse.SparseLinear`, which store and train the kept weights only and need
    no mask (faster for weight pruning from about k = 90 %; the benchmark times it:
    ``retraining`` in ``efficiency_machine.json``)."""
    # compacted exactly once: compacting a compact network can drop the neurons whose only readers
    # it dropped, and helpers.compact.restore_units expects the first compaction's shape
    small = initialise(compact_units(model).to(next(model.parameters()).device))
    masks = masks_of(small, prune_last)
    return (with_sparse_layers(small, masks), {}) if csr else (small, masks)


def _train_compact(pruned_model: nn.Module, initialise: Callable[[nn.Module], nn.Module], train_split: Split,
                   eval_splits: Mapping[str, Split], *, prune_last: bool, csr: bool = False,
                   **training) -> tuple[nn.Module, pd.DataFrame]:
    """Train the :func:`training_form` of ``pruned_model`` (through ``initialise``) with its
    zero weights held at zero, and return it expanded back to ``pruned_model``'s shape, with the
    history of ``train``. A module that is not an :class:`~helpers.model.MLP` trains as it is, masked."""
    if not isinstance(pruned_model, MLP):
        model = initialise(copy.deepcopy(pruned_model))
        return model, train(model, train_split, eval_splits, masks=masks_of(model, prune_last), **training)
    form, masks = training_form(pruned_model, prune_last, csr, initialise)
    history = train(form, train_split, eval_splits, masks=masks, **training)
    return restore_units(without_sparse_layers(form), pruned_model), history


# --- the control ------------------------------------------------------------------------


SCRATCH_INIT_OFFSET = 1_000_003
"""Added to the seed that initialises the scratch control, so that its fresh weights differ
from the dense model's initialisation of the same seed (which is what rewinding would use)."""


def scratch(
    pruned_model: nn.Module,
    train_split: Split,
    eval_splits: Mapping[str, Split],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    prune_last: bool = False,
    csr: bool = False,
    progress: bool = False,
) -> tuple[nn.Module, pd.DataFrame]:
    """The control of Liu et al. (2019): what pruning left, trained from scratch.

    The architecture and mask of ``pruned_model`` (for unit pruning, the smaller network its
    live neurons form; for weight pruning, its mask) get fresh weights, drawn as
    :class:`~helpers.model.MLP` draws them from the seed ``seed + SCRATCH_INIT_OFFSET``, with
    the pruned weights zero; they train with that mask fixed for ``epochs`` at ``lr``
    (give it the dense model's recipe). Training runs on the compact form like
    :func:`finetune` (``csr``: the prunable layers in CSR).

    Returns ``(model, history)``: the trained network in ``pruned_model``'s shape (its dead
    neurons keep ``pruned_model``'s weights, which cannot affect the logits) and the history.
    """
    _check_training(epochs, lr, batch_size, seed)

    def fresh(model: nn.Module) -> nn.Module:
        masks = masks_of(model, prune_last)
        generator = torch.Generator().manual_seed(seed + SCRATCH_INIT_OFFSET)
        with torch.no_grad():
            for _, layer in linear_layers(model):
                weight = torch.empty_like(layer.weight, device="cpu")
                # nn.Linear's own initialisation (Kaiming uniform, a = sqrt(5)), from our generator
                bound = 1.0 / math.sqrt(weight.shape[1])
                layer.weight.copy_(weight.uniform_(-bound, bound, generator=generator))
        return apply_masks(model, masks)

    return _train_compact(pruned_model, fresh, train_split, eval_splits, epochs=epochs, lr=lr,
                          batch_size=batch_size, seed=seed, prune_last=prune_last, csr=csr, progress=progress,
                          description="scratch")


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


def rewinding_path(k_final: float, rounds: int) -> list[float]:
    """Levels (percent) of iterative magnitude pruning that removes the same fraction of the
    surviving weights (or neurons) in each of ``rounds`` rounds and ends at ``k_final``:
    round ``r`` keeps ``(1 - k_final / 100) ** (r / rounds)`` of the layer, rounded to 0.1 point
    (the last level is exactly ``k_final``). With 6 rounds to 99 %, the path is
    53.6, 78.5, 90, 95.4, 97.8, 99: through or near the study's levels."""
    k_final = check_k(k_final)
    rounds = positive_int("rounds", rounds)
    kept = 1.0 - k_final / 100.0
    levels = [round(100.0 * (1.0 - kept ** (r / rounds)), 1) for r in range(1, rounds + 1)]
    levels[-1] = k_final
    return levels


# --- gradual pruning -------------------------------------------------------------------


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
    prune_every: int = 10,
    ramp: float = 0.5,
    k_initial: float = 0.0,
    prune_last: bool = False,
    progress: bool = False,
) -> tuple[nn.Module, pd.DataFrame]:
    """Gradual magnitude pruning (Zhu & Gupta 2017) of a trained model during one training
    run of ``epochs`` epochs.

    The run is one :func:`helpers.training.train` call: one Adam optimiser and one cosine
    decay of the learning rate from ``lr`` to 0 over the whole budget. Inside it, a pruning
    step falls every ``prune_every`` optimiser steps from the first one until the fraction
    ``ramp`` of the run; step ``t`` prunes each prunable layer in place to the ``t``-th
    level of :func:`cubic_schedule` by ``method``'s scores of the weights as they are then,
    so the last step reaches exactly ``k`` (``round(k / 100 * n)`` weights, or neurons, per
    layer), and the rest of the run trains at that mask. Each step zeroes the newly pruned
    weights and their Adam moments. ``ramp=0`` is one-shot pruning followed by fine-tuning.

    Returns ``(model, history)``: the pruned, trained deep copy (``model`` is unchanged) and
    the per-epoch history of :func:`helpers.training.train`.
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

    total_steps = epochs * -(-len(train_split) // batch_size)
    levels = cubic_schedule(k, int(ramp * total_steps // prune_every) + 1, k_initial)
    work = copy.deepcopy(model)

    def prune_at(step: int) -> Masks | None:
        t, due = divmod(step, prune_every)
        if due or t >= len(levels):
            return None
        return prune_in_place(work, levels[t], mask_fn, prune_last)[1]

    history = train(work, train_split, eval_splits, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                    prune_at=prune_at, progress=progress, description=f"gradual {method} k={k:g}")
    return work, history
