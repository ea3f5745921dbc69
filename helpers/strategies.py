"""The ways a pruned network is made (strategies) and the orders weights are ranked in (rankings): one registry each.

A :class:`Strategy` holds all the study knows of one way to reach a level: its name (as results
rows and the ``strategies`` parameter spell it), its one label (prose, tables and figures
alike), its line style in every figure, where it runs (every level of the sweep, or the
controls' levels), whether its learning rate is chosen on validation, whether it trains a fixed
mask, whether it prunes a trained network and retrains what is left, whether it runs in rounds,
how it makes a network (:attr:`Strategy.make`, a few lines over :mod:`helpers.recovery`) and,
for a control, where and how long it trains (:attr:`Strategy.plan`); :func:`sweep_rows` selects
the level sweep's rows by these flags. Every other module asks the objects; none compares a
strategy's name with a literal. Adding a strategy is one function and one entry in
:data:`STRATEGIES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
from torch import nn

from .data import Split
from .pruning import global_weight_prune, lamp_scores, prune, random_weight_prune
from .recovery import finetune, gradual_prune, iterative_path, rewind, scratch
from .training import initial_model

Plan = Callable[[Mapping[str, Any], Any], "Schedule"]
"""Where and how long a control trains: ``plan(params, recipe) -> Schedule`` from a pruning
notebook's checked ``params`` and the dense recipe's budget (a
:class:`helpers.retraining.Budget`)."""

Make = Callable[[Any, nn.Module, Split], nn.Module]
"""How a strategy makes a network: ``make(job, start, train_split)``, from ``start`` (the
dense model, or the network the round before left) for the retraining ``job`` describes (a
:class:`helpers.retraining.Retraining`, which asks its strategy: no import back)."""


@dataclass(frozen=True)
class Strategy:
    """One way to make a pruned network (see the module's docstring)."""

    name: str
    label: str
    does: str  # what it does, one clause for the chapters' prose
    line: Any  # a matplotlib dash pattern
    marker: str
    make: Make | None = None  # None: pruning alone, nothing trains
    control: bool = False  # run at control_ks only, not at every level of the sweep
    tuned: bool = False  # learning rate chosen on the validation split (a control's: at its highest level)
    fixed_mask: bool = False  # trains a fixed mask (in CSR from csr_from_k)
    retrains: bool = False  # prunes a trained network, then trains what is left
    rounds: bool = False  # iterative: its rows carry the epochs of all rounds so far
    plan: Plan | None = None  # a control's levels and budget; None: the sweep's levels and budgets
    follows: str | None = None  # the strategy in rounds whose round before a level it starts from

    @property
    def trains(self) -> bool:
        """Whether it trains after pruning (every strategy but one-shot pruning)."""
        return self.make is not None

    def described(self, epochs: int, per_round: int | None = None) -> str:
        """Its label with its budget: ``"one-shot + fine-tuning (3 epochs)"``; a strategy in
        rounds names its ``per_round`` epochs, and one that follows another's rounds (the
        ticket's re-initialised control, which trains once on the mask they found) the
        ``per_round`` epochs of that one; none when nothing trained."""
        if self.follows and per_round is not None:
            return f"{self.label} ({per_round} epoch{'s' * (per_round > 1)})"
        if self.rounds and per_round is not None:
            return f"{self.label} ({per_round} epoch{'s' * (per_round > 1)} per round)"
        return f"{self.label} ({epochs} epoch{'s' * (epochs > 1)})" if epochs else self.label


def _train_mask(train: Callable[..., tuple[nn.Module, Any]]) -> Make:
    """Prune ``start`` to the job's level, then ``train`` (:func:`~helpers.recovery.finetune`
    or :func:`~helpers.recovery.scratch`) what is left with its mask fixed."""
    def make(job, start: nn.Module, train_split: Split) -> nn.Module:
        return train(pruned(job, start), train_split, {}, csr=job.csr, **job.training())[0]
    return make


def _gradual(job, start: nn.Module, train_split: Split) -> nn.Module:
    return gradual_prune(start, train_split, {}, k=job.k, method=job.method, csr_from_k=job.csr_from,
                         **job.training())[0]


@dataclass(frozen=True)
class Schedule:
    """Where and how long a control trains: its ``levels``, its ``budget`` (a
    :class:`helpers.retraining.Budget`), for a strategy in rounds its ``path`` (the levels of
    every round, in order: each level of ``levels`` starts from the round before it on the
    path), and on how many ``seeds``."""

    levels: list[float]
    budget: Any
    path: tuple[float, ...] = ()
    seeds: int | None = None  # the first this many seeds run it (None: every seed)


def _at_control_levels(params: Mapping[str, Any], recipe: Any) -> Schedule:
    """Scratch-E (Liu et al. 2019): the dense recipe at every level of ``control_ks``, on the
    sweep's seeds."""
    return Schedule(list(params["control_ks"]), recipe, seeds=params["sweep_seeds"])


def _same_compute(params: Mapping[str, Any], recipe: Any) -> Schedule:
    """Scratch-B (Liu et al. 2019): as many training multiply-adds as the dense model's
    training, capped at twice its epochs, at every level of ``control_ks``: a network with a
    fraction f of the dense weights gets ``epochs / f`` epochs, so from k = 50 % on, twice the
    recipe's (the cap)."""
    kept = 1.0 - min(params["control_ks"]) / 100.0
    return Schedule(list(params["control_ks"]), replace(recipe, epochs=min(2 * recipe.epochs,
                                                                             math.ceil(recipe.epochs / kept))),
                    seeds=params["sweep_seeds"])


def _iterative(params: Mapping[str, Any], recipe: Any) -> Schedule:
    """Rounds that each remove ``imp_rate`` of the survivors, up to the highest of
    ``control_ks``, each trained with the whole dense recipe; a row at every round; on the
    sweep's seeds (a chain costs about ten dense trainings: README, Cost)."""
    path = tuple(iterative_path(max(params["control_ks"]), params["imp_rate"]))
    return Schedule(list(path), recipe, path, params["sweep_seeds"])


def _reinitialised(params: Mapping[str, Any], recipe: Any) -> Schedule:
    """The ticket's masks at the first round of its path at or beyond each level of
    ``control_ks``, with fresh weights, trained with the dense recipe, on the ticket's seeds."""
    path = _iterative(params, recipe).path
    return Schedule(sorted({next(p for p in path if p >= k) for k in params["control_ks"]}), recipe, path,
                    params["sweep_seeds"])


def _ticket_round(job, start: nn.Module, train_split: Split) -> nn.Module:
    return rewind(pruned(job, start), initial_model(job.seed, start.widths[1:-1]), train_split, {}, csr=job.csr,
                  **job.training())[0]


ONESHOT = Strategy("oneshot", "one-shot", "prunes the trained model once", "-", "o")
FINETUNE = Strategy("finetune", "one-shot + fine-tuning",
                    "prunes it once, then retrains it for the recovery budget with the mask fixed", (0, (5, 2)), "s",
                    _train_mask(finetune), tuned=True, fixed_mask=True, retrains=True)
GRADUAL = Strategy("gradual", "gradual", "prunes step by step on a cubic schedule inside one training run of the same "
                   "number of epochs (one optimiser, one learning-rate decay)", (0, (1.5, 1.5)), "^", _gradual,
                   tuned=True, retrains=True)
# learning-rate rewinding: a round prunes further what the round before left and retrains it
# with the whole dense recipe, its learning-rate schedule replayed from the start
LRR = Strategy("lrr", "iterative, learning-rate rewinding",
               "is iterative magnitude pruning with learning-rate rewinding (Renda et al. 2020): each round removes "
               "the same fraction of the survivors, keeps the trained weights and retrains them with the whole dense "
               "recipe, its learning-rate schedule replayed; its rows carry the epochs of all rounds so far",
               (0, (3, 1, 1, 1, 1, 1)), "P", _train_mask(finetune), control=True, fixed_mask=True, retrains=True,
               rounds=True, plan=_iterative)
TICKET = Strategy("ticket", "lottery ticket",
                  "is the lottery ticket of Frankle & Carbin (2019): each round removes the same fraction of the "
                  "survivors of the trained network, resets the rest to their values before the dense training (not "
                  "to an early iteration: this network is shallow) and trains them with the whole dense recipe",
                  (0, (4, 1, 1, 1)), "*", _ticket_round, control=True, fixed_mask=True, retrains=True, rounds=True,
                  plan=_iterative)
REINIT = Strategy("reinit", "lottery ticket's mask, re-initialised (control)",
                  "is Frankle & Carbin's control for the ticket: the ticket's mask at that level with freshly drawn "
                  "weights, trained with the dense recipe", (0, (1, 2)), "d", _train_mask(scratch), control=True,
                  fixed_mask=True, rounds=True, plan=_reinitialised, follows="ticket")
SCRATCH = Strategy("scratch", "trained from scratch, Scratch-E (control)",
                   "trains the network that pruning left (its shape and mask) from a fresh initialisation for the "
                   "dense model's epochs (Liu et al.'s Scratch-E), at a few levels only", (0, (6, 2, 1, 2)), "X",
                   _train_mask(scratch), control=True, tuned=True, fixed_mask=True, plan=_at_control_levels)
SCRATCH_B = Strategy("scratch_b", "trained from scratch, Scratch-B (control)",
                     "trains the same network from a fresh initialisation for as many training multiply-adds as the "
                     "dense model's training, at most twice its epochs (Liu et al.'s Scratch-B)", (0, (6, 2)), "x",
                     _train_mask(scratch), control=True, tuned=True, fixed_mask=True, plan=_same_compute)

STRATEGIES: dict[str, Strategy] = {s.name: s for s in (ONESHOT, FINETUNE, GRADUAL, LRR, TICKET, REINIT, SCRATCH,
                                                       SCRATCH_B)}
"""Every strategy, in the report's order: pruned once from the dense model; pruned once, then
retrained with the mask fixed; pruned gradually during retraining (Zhu & Gupta's cubic
schedule); iterative magnitude pruning as its authors define it, with learning-rate rewinding
(Renda et al. 2020) and as the lottery ticket (Frankle & Carbin 2019), each round removing a
fixed fraction of the survivors (:func:`helpers.recovery.iterative_path`) and training the whole
dense recipe; and the controls: the ticket's mask re-initialised, and the pruned network trained
from scratch for the dense model's epochs (Scratch-E) or for its compute (Scratch-B)."""


def strategy(name: str) -> Strategy:
    """The registered strategy called ``name``; ``ValueError`` naming the accepted ones otherwise."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; accepted: {list(STRATEGIES)}")
    return STRATEGIES[name]


def named(names, **flags: bool) -> list[str]:
    """The names of ``names`` (any iterable of strategy names, e.g. a results column's values)
    whose strategies have every attribute of ``flags`` as given, in the registry's order:
    ``named(results.strategy, control=False)`` are those of the level sweep."""
    present = set(names)
    return [s.name for s in STRATEGIES.values()
            if s.name in present and all(getattr(s, flag) == value for flag, value in flags.items())]


@dataclass(frozen=True)
class Ranking:
    """How weights are ranked for pruning: its name (as results rows spell it), its one label,
    its line style in every figure, and how it prunes: ``prune(model, k, method, prune_last,
    seed)`` -> a pruned copy (``seed`` draws a random ranking's choice)."""

    name: str
    label: str
    line: Any
    marker: str
    prune: Callable[[nn.Module, float, str, bool, int], nn.Module]


def _per_layer(model: nn.Module, k: float, method: str, prune_last: bool, seed: int) -> nn.Module:
    return prune(model, k, method, prune_last=prune_last)


def _global(model: nn.Module, k: float, method: str, prune_last: bool, seed: int) -> nn.Module:
    return global_weight_prune(model, k, prune_last=prune_last)


def _lamp(model: nn.Module, k: float, method: str, prune_last: bool, seed: int) -> nn.Module:
    return global_weight_prune(model, k, prune_last=prune_last, scores=lamp_scores)


def _random(model: nn.Module, k: float, method: str, prune_last: bool, seed: int) -> nn.Module:
    return random_weight_prune(model, k, seed=seed, prune_last=prune_last)


LAYER = Ranking("layer", "per-layer ranking", "-", "o", _per_layer)
GLOBAL = Ranking("global", "global ranking", (0, (5, 2)), "D", _global)
LAMP = Ranking("lamp", "LAMP (layer-adaptive)", (0, (3, 1, 1, 1)), "h", _lamp)
RANDOM = Ranking("random", "random (floor)", (0, (1, 1)), "1", _random)

RANKINGS: dict[str, Ranking] = {r.name: r for r in (LAYER, GLOBAL, LAMP, RANDOM)}
"""Within each layer by the method's scores (the study's); for weight pruning also one
magnitude threshold across all prunable layers, LAMP's layer-adaptive scores ranked across
layers (Lee et al. 2021), and random weights in the per-layer counts of magnitude pruning (the
floor Blalock et al. 2020 ask for)."""


def pruned(job, start: nn.Module) -> nn.Module:
    """``start`` pruned to the level of ``job`` (a :class:`helpers.retraining.Retraining`) by its
    method and ranking."""
    return RANKINGS[job.ranking].prune(start, job.k, job.method, job.prune_last, job.seed)


def sweep_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of the level sweep: one-shot rows, every row of the controls, and for each other
    retraining strategy the rows of its smallest budget (``epochs``), leaving out longer runs
    made at a few levels only."""
    if "epochs" not in results or "strategy" not in results:
        return results
    kept = results["strategy"].map(lambda s: not strategy(s).trains or strategy(s).control)
    retrained = results[~kept]
    budget = retrained.groupby("strategy")["epochs"].transform("min")
    return pd.concat([results[kept], retrained[retrained["epochs"] == budget]])
