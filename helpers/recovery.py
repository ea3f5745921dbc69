"""Retraining after pruning: fine-tuning with a fixed mask, gradual magnitude pruning, and the controls (from scratch, iterative with rewinding).

Every training here goes through :func:`helpers.training.train` on the smallest form of what
it trains (:func:`training_form`: pruned neurons dropped, weight-pruned layers in CSR where that
pays), where pruned weights do not exist, or with masks, where pruned weights stay exactly zero
through every optimiser step: their gradients are zeroed before the step (Adam's moments for
them therefore stay zero) and the weights are re-masked after it. No function changes the
model it is given: each works on a deep copy.

Re-pruning a partly pruned model keeps its pruned set: its pruned weights (or neuron rows)
are exact zeros, hence the smallest |w| (or row norms), so a higher level removes them again
plus the smallest survivors. Schedules with non-decreasing levels therefore grow the pruned
set monotonically, and the last step leaves exactly ``round(k / 100 * n)`` pruned per layer,
the count of :mod:`helpers.pruning`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping

import pandas as pd
import torch
from torch import nn

from .checks import in_range, non_negative_int, positive_finite, positive_int
from .data import Split
from .compact import compact_units, kept_positions, restore_units
from .model import MLP, linear_layers
from .pruning import Masks, apply_masks, check_k, masks_of, method as pruning_method, prune_in_place
from .sparse import SparseLinear, with_sparse_layers, without_sparse_layers
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


def rewind(
    pruned_model: nn.Module,
    initial: nn.Module,
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
    """A round of the lottery ticket (Frankle & Carbin 2019): the survivors of ``pruned_model``
    reset to their values in ``initial`` (the dense network before its training, same shape),
    the pruned weights zero, trained with that mask fixed for ``epochs`` at ``lr`` (give it the
    dense recipe), in the compact form like :func:`finetune`.

    Returns ``(model, history)`` as :func:`scratch` does.
    """
    _check_training(epochs, lr, batch_size, seed)
    # reset at full shape, before the compact form is made: the same zeros, hence the same form
    masks = masks_of(pruned_model, prune_last)
    rewound = copy.deepcopy(pruned_model)
    with torch.no_grad():
        for (_, layer), (_, start) in zip(linear_layers(rewound), linear_layers(initial)):
            layer.weight.copy_(start.weight)
    apply_masks(rewound, masks)
    return _train_compact(rewound, lambda small: small, train_split, eval_splits, epochs=epochs, lr=lr,
                          batch_size=batch_size, seed=seed, prune_last=prune_last, csr=csr, progress=progress,
                          description="lottery ticket round")


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
                          description="training from scratch")


# --- schedules -------------------------------------------------------------------------


def cubic_schedule(k_final: float, n_steps: int, k_initial: float = 0.0) -> list[float]:
    """Sparsity levels (percent) of the ``n_steps`` pruning steps of Zhu & Gupta (2017).

    Step ``t = 1 .. n`` prunes to ``k_t = k_f + (k_i - k_f) (1 - t / n)^3``: fast at first,
    while many redundant weights remain, then slower; the last level is exactly ``k_final``.
    The levels never decrease. (``t = 0``, the level ``k_initial`` the model starts from,
    is not a step.) The arguments are trusted: :func:`gradual_prune` checked them.
    """
    levels = [k_final + (k_initial - k_final) * (1.0 - t / n_steps) ** 3 for t in range(1, n_steps + 1)]
    levels[-1] = k_final
    return levels


def iterative_path(k_final: float, rate: float) -> list[float]:
    """Levels (percent) of iterative magnitude pruning that removes the fraction ``rate`` of the
    surviving weights (or neurons) of every prunable layer in each round, up to ``k_final``:
    round ``r`` keeps ``(1 - rate) ** r`` of the layer, its level rounded to 0.01 point; the
    last round ends exactly at ``k_final`` (it removes less when a full round would overshoot).
    At 40 % per round to 99.7 %: 40, 64, 78.4, 87.04, 92.22, ..., 99.64, 99.7. The arguments
    are trusted: they come from a notebook's checked parameters."""
    levels, kept = [], 1.0
    while True:
        kept *= 1.0 - rate
        k = round(100.0 * (1.0 - kept), 2)
        if k >= k_final:
            return [*levels, k_final]
        levels.append(k)


# --- gradual pruning -------------------------------------------------------------------


def form_positions(form: MLP, kept: list[torch.Tensor]) -> dict[str, tuple[str, torch.Tensor]]:
    """For every parameter of ``form`` (a :func:`training_form` of a network ``full``, not yet
    trained; ``kept`` is :func:`helpers.compact.kept_positions` of ``full``): the layer of
    ``full`` whose weights it holds and their flat positions in that layer's weight, in the
    parameter's order (``full``'s weight ``.flatten()[positions]`` is the parameter, flattened)."""
    positions = {}
    for name, flat in zip(form.layer_names, kept):
        layer = getattr(form, name)
        if isinstance(layer, SparseLinear):
            positions[f"{name}.values"] = (name, flat.view(layer.shape)[layer.rows.cpu(), layer.cols.cpu()])
        else:
            positions[f"{name}.weight"] = (name, flat)
    return positions


@torch.no_grad()
def _zero_moments(optimiser: torch.optim.Optimizer, masked) -> None:
    """Zero Adam's moments of every weight pruned now (``mask`` False): it would otherwise keep
    the momentum of its past gradients, and the next step would move it although its gradient
    is zero."""
    for weight, mask in masked:
        for key, value in optimiser.state.get(weight, {}).items():
            if key != "step":
                value.mul_(mask)


class _GradualForms:
    """The pruning steps of :func:`gradual_prune`, each followed by a switch to the smallest form
    that trains what is left: ``full`` (the network in its own shape, pruned in place) is brought
    up to date from the form trained so far, pruned to the step's level, and rebuilt as its
    :func:`training_form` (in CSR from ``csr_from_k`` on); the optimiser gets the new form's
    parameters with their Adam state, gathered through ``full``'s shape, so that the moments of
    everything pruned so far are zero and those of every kept weight carry on."""

    def __init__(self, full: MLP, levels: list[float], prune_every: int, mask_fn, prune_last: bool,
                 csr_from_k: float | None) -> None:
        self.full, self.levels, self.prune_every = full, levels, prune_every
        self.mask_fn, self.prune_last, self.csr_from_k = mask_fn, prune_last, csr_from_k
        self.form: MLP = full
        self.positions = {f"{name}.weight": (name, torch.arange(getattr(full, name).weight.numel()))
                          for name in full.layer_names}

    def __call__(self, step: int, optimiser: torch.optim.Optimizer) -> tuple[MLP, Masks] | None:
        t, due = divmod(step, self.prune_every)
        if due or t >= len(self.levels):
            return None
        csr = self.csr_from_k is not None and self.levels[t] >= self.csr_from_k
        self._write_back()
        state = self._gather(optimiser) if self.form is not self.full else {}
        masks = prune_in_place(self.full, self.levels[t], self.mask_fn, self.prune_last)[1]
        kept = kept_positions(self.full)
        if self.form is self.full:
            if not csr and all(len(flat) == self.full.get_submodule(name).weight.numel()
                               for name, flat in zip(self.full.layer_names, kept)):
                # nothing to drop yet (weight pruning, every neuron alive): masked training goes on in place
                _zero_moments(optimiser, [(getattr(self.full, name).weight, mask) for name, mask in masks.items()])
                return self.full, masks
            state = self._gather(optimiser)
        self.form, masks = training_form(self.full, self.prune_last, csr)
        self.positions = form_positions(self.form, kept)
        self._hand_over(optimiser, state)
        return self.form, masks

    def _pairs(self):
        """Each parameter of the form, the name of the layer of ``full`` it holds weights of, and
        their flat positions there."""
        for name, parameter in self.form.named_parameters():
            layer, flat = self.positions[name]
            yield parameter, layer, flat.to(parameter.device)

    @torch.no_grad()
    def _write_back(self) -> None:
        """Bring ``full`` up to date with the weights of the form."""
        for parameter, layer, flat in self._pairs():
            weight = getattr(self.full, layer).weight
            if parameter is not weight:
                weight.view(-1)[flat] = parameter.view(-1)

    @torch.no_grad()
    def _gather(self, optimiser: torch.optim.Optimizer) -> dict[tuple[str, str], torch.Tensor]:
        """The form's Adam state, (state key, layer) -> tensor in the layer's shape, flattened
        (zero for what the form does not hold)."""
        state: dict[tuple[str, str], torch.Tensor] = {}
        for parameter, layer, flat in self._pairs():
            for key, value in optimiser.state.get(parameter, {}).items():
                if key == "step":  # the same count for every parameter
                    state[key, ""] = value
                else:
                    weight = getattr(self.full, layer).weight
                    state.setdefault((key, layer), weight.new_zeros(weight.numel()))[flat] = value.view(-1)
        return state

    @torch.no_grad()
    def _hand_over(self, optimiser: torch.optim.Optimizer, state: dict[tuple[str, str], torch.Tensor]) -> None:
        """Give ``optimiser`` the new form's parameters, each with its part of ``state``, zero
        wherever ``full`` is now pruned."""
        optimiser.state.clear()
        optimiser.param_groups[0]["params"] = list(self.form.parameters())
        for parameter, layer, flat in self._pairs():
            if ("step", "") in state:
                kept = getattr(self.full, layer).weight.view(-1)[flat] != 0
                optimiser.state[parameter] = {"step": state["step", ""].clone(), **{
                    key: (full[flat] * kept).view_as(parameter) for (key, name), full in state.items() if name == layer}}

    def expanded(self) -> MLP:
        """``full`` with the weights of the form trained last."""
        self._write_back()
        return self.full


PRUNING_INTERVAL = 100
"""Optimiser steps between two pruning steps of gradual pruning, at most: Zhu & Gupta (2017)
space them 100 to 1,000 steps apart (their Δt)."""

MIN_PRUNING_STEPS = 10
"""The fewest pruning steps a gradual run takes: a shorter run spaces them closer than
:data:`PRUNING_INTERVAL` (a run too short even for that is degenerate)."""

def pruning_interval(total_steps: int, ramp: float = 0.5, interval: int = PRUNING_INTERVAL) -> int:
    """Optimiser steps between two pruning steps of a run of ``total_steps``: ``interval``, or
    fewer, so that the first ``ramp`` of the run holds :data:`MIN_PRUNING_STEPS` steps."""
    return max(1, min(interval, int(ramp * total_steps) // (MIN_PRUNING_STEPS - 1)))


def gradual_pruning_steps(images: int, epochs: int, batch_size: int, prune_every: int | None = None,
                          ramp: float = 0.5) -> tuple[int, int]:
    """``(optimiser steps, pruning steps)`` of a :func:`gradual_prune` run of ``epochs`` epochs
    on ``images`` training images in batches of ``batch_size``: a pruning step at the first
    optimiser step and every ``prune_every`` (None: :func:`pruning_interval`) after it, within
    the first ``ramp`` of the run, the rest of the run training at the final mask (Zhu & Gupta's
    last phase). One pruning step prunes to ``k`` at once: the run is then fine-tuning."""
    total = epochs * -(-images // batch_size)
    prune_every = pruning_interval(total, ramp) if prune_every is None else prune_every
    return total, int(ramp * total // prune_every) + 1


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
    prune_every: int | None = None,
    ramp: float = 0.5,
    k_initial: float = 0.0,
    prune_last: bool = False,
    csr_from_k: float | None = None,
    progress: bool = False,
) -> tuple[MLP, pd.DataFrame]:
    """Gradual magnitude pruning (Zhu & Gupta 2017) of a trained model during one training
    run of ``epochs`` epochs.

    The run is one :func:`helpers.training.train` call: one Adam optimiser and one cosine
    decay of the learning rate from ``lr`` to 0 over the whole budget. Inside it, a pruning
    step falls every ``prune_every`` optimiser steps (None: :func:`pruning_interval`, 100 or
    fewer so that the ramp holds ten steps) from the first one until the fraction ``ramp`` of
    the run; step ``t`` prunes each prunable layer in place to the ``t``-th
    level of :func:`cubic_schedule` by ``method``'s scores of the weights as they are then,
    so the last step reaches exactly ``k`` (``round(k / 100 * n)`` weights, or neurons, per
    layer), and the rest of the run trains at that mask. Each step zeroes the newly pruned
    weights and their Adam moments. ``ramp=0`` is one-shot pruning followed by fine-tuning.

    What pruning removed is not trained on: after each step the run goes on in the step's
    :func:`training_form` of ``model`` (an :class:`~helpers.model.MLP`), its pruned neurons
    dropped (they never return: the pruned set only grows) and, for weight pruning from the
    step whose level reaches ``csr_from_k`` on, its prunable layers in CSR; Adam's state
    carries over for every weight kept. Weights that can no longer affect the loss (pruned, or
    reading a pruned neuron) therefore stop moving at the step that removes them, which masked
    training would only approach (their stale momentum keeps moving the ones a pruned neuron
    leaves in the next layer, without effect on the logits).

    Returns ``(model, history)``: the pruned, trained deep copy (``model`` is unchanged) and
    the per-epoch history of :func:`helpers.training.train`.
    """
    k = check_k(k)
    mask_fn = pruning_method(method).mask
    _check_training(epochs, lr, batch_size, seed)
    in_range("ramp", ramp, 0, 1, high_open=True, accepted="a fraction of training in [0, 1)")
    total = epochs * -(-len(train_split) // batch_size)
    prune_every = pruning_interval(total, ramp) if prune_every is None else positive_int("prune_every", prune_every)
    check_k(k_initial)
    k_initial = in_range("k_initial", k_initial, 0, k, accepted=f"in [0, k={k}]")

    _, pruning_steps = gradual_pruning_steps(len(train_split), epochs, batch_size, prune_every, ramp)
    levels = cubic_schedule(k, pruning_steps, k_initial)
    if pruning_method(method).shrinks:  # a unit-pruned form is small and dense: never CSR
        csr_from_k = None
    forms = _GradualForms(copy.deepcopy(model), levels, prune_every, mask_fn, prune_last, csr_from_k)
    history = train(forms.full, train_split, eval_splits, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                    prune_at=forms, progress=progress, description=f"gradual {method} k={k:g}")
    return forms.expanded(), history
