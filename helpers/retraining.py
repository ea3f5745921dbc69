"""What makes a retrained network: the budget, the recipe of one retraining and its cache record, and the dense models they start from."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from torch import nn

from . import provenance
from .checks import in_range
from .checkpoints import cached, load_dense
from .data import Split
from .model import MLP
from .pruning import method as pruning_method
from .strategies import LAYER, strategy as registered
from .training import TrainConfig

MAX_RETRAINING_EPOCHS = 10
"""The most training after the dense model one retraining budget holds: what the study's
targets allow (the scratch control, which gets the dense recipe, aside)."""

MAX_BUDGET_EPOCHS = 100
"""The most epochs any budget holds: the controls' (Scratch-B trains up to twice the dense
recipe) as well as the retraining budgets, which the notebooks' parameters hold to
:data:`MAX_RETRAINING_EPOCHS`."""

RETRAINING_SCHEMA = 4
"""Version of the retraining procedures, part of every retrained model's record: 2 trains
unit-pruned networks in compact form and runs gradual pruning as one training run; 3 goes on
after each gradual pruning step in the smallest form of what is left (compact, and CSR from
``csr_from_k``); 4 adds the lottery ticket, its re-initialised control and Scratch-B, spaces
gradual pruning steps as Zhu & Gupta do (100 optimiser steps apart, closer only to keep ten), and
trains every model of the study without the validation images."""


@dataclass(frozen=True)
class Budget:
    """A retraining budget: the epochs, learning rate and batch size of the training after the
    dense model that one retrained network gets (:class:`Retraining`); the procedures that
    spend it are those of :mod:`helpers.recovery`."""

    epochs: int = 1
    lr: float = 8e-3
    batch_size: int = 256

    def __post_init__(self) -> None:
        in_range("recovery epochs", self.epochs, 1, MAX_BUDGET_EPOCHS, integer=True)
        in_range("recovery lr", self.lr, 0, 1, low_open=True)


@dataclass(frozen=True)
class Retraining:
    """One retrained network: the strategy (the name of any strategy of
    :data:`helpers.strategies.STRATEGIES` that trains),
    method, level, seed and budget that, with the dense model and the training data, determine
    its weights. A ``lottery`` round also names the levels of the rounds before it (``path``,
    in order): it starts from the network the last of them left, or from the dense model.
    ``csr_from_k``: the level from which a fixed mask trains in CSR (:attr:`csr`; None: never)."""

    strategy: str
    method: str
    k: float
    seed: int
    budget: Budget
    prune_last: bool = False
    path: tuple[float, ...] = ()
    csr_from_k: float | None = None
    ranking: str = LAYER.name  # a name of helpers.strategies.RANKINGS: how the weights to prune are chosen

    @property
    def csr_from(self) -> float | None:
        """The level from which this network's prunable layers train in CSR (None: never):
        ``csr_from_k``, for a method whose compact form keeps zeros (weight pruning)."""
        return None if pruning_method(self.method).shrinks else self.csr_from_k

    @property
    def csr(self) -> bool:
        """Whether this network trains in CSR (:mod:`helpers.sparse`) from its start: a fixed
        mask at a level of at least :attr:`csr_from`. Gradual pruning switches to CSR at the
        pruning step that reaches it."""
        return registered(self.strategy).fixed_mask and self.csr_from is not None and self.k >= self.csr_from

    @property
    def epochs(self) -> int:
        """Epochs of training after the dense model, the rounds before this one included."""
        return self.budget.epochs * (len(self.path) + 1)

    def previous(self) -> Retraining | None:
        """The round this one starts from (``None``: it starts from the dense model): of its own
        strategy, or of the one it follows (the lottery ticket, for its re-initialised control)."""
        if not self.path:
            return None
        return replace(self, strategy=registered(self.strategy).follows or self.strategy, k=self.path[-1],
                       path=self.path[:-1])

    def record(self, dense_fingerprint: str, train_split: Split) -> dict[str, Any]:
        """The provenance record of this network made from the dense model whose weights have
        fingerprint ``dense_fingerprint``: both its cache key and what its checkpoint says."""
        record = {"kind": self.strategy, "dense_fingerprint": dense_fingerprint, "method": self.method,
                  "k": self.k, "seed": self.seed, "prune_last": self.prune_last, "train_data": train_split.fingerprint,
                  "budget": asdict(self.budget), "schema": RETRAINING_SCHEMA, "versions": provenance.versions()}
        record = {**record, "path": list(self.path)} if self.path else record
        record = {**record, "ranking": self.ranking} if self.ranking != LAYER.name else record
        if not registered(self.strategy).fixed_mask and self.csr_from is not None and self.k >= self.csr_from:
            return {**record, "csr_from_k": self.csr_from}  # a moving mask goes to CSR on the way
        return {**record, "csr": True} if self.csr else record

    def training(self) -> dict[str, Any]:
        """The keyword arguments every training of :mod:`helpers.recovery` takes from this job:
        epochs, learning rate and batch size of its budget, seed and ``prune_last``."""
        return dict(epochs=self.budget.epochs, lr=self.budget.lr, batch_size=self.budget.batch_size, seed=self.seed,
                    prune_last=self.prune_last)

    def run(self, start: nn.Module, train_split: Split) -> nn.Module:
        """Train this network on ``train_split`` from ``start`` (not modified): the dense model,
        or for a later ``lottery`` round the network of the round before, as its strategy makes
        it (:attr:`helpers.strategies.Strategy.make`)."""
        return registered(self.strategy).make(self, start, train_split)


@dataclass(frozen=True)
class DenseModels:
    """The trained dense models the pruning notebooks start from, loaded once: seed -> model,
    and seed -> fingerprint of its weights (what results and retrained models record)."""

    models: Mapping[int, MLP]
    fingerprints: Mapping[int, str]
    recipe: TrainConfig | None = None

    @classmethod
    def load(cls, checkpoint_dir: str | os.PathLike, seeds: Iterable[int], data: Mapping[str, Split]) -> DenseModels:
        """The dense model of every seed left in ``checkpoint_dir`` by the training notebook,
        each refused (:class:`helpers.checkpoints.CheckpointError`) unless trained on ``data``,
        with the recipe they were trained by (their configuration, seed aside)."""
        loaded = {seed: load_dense(checkpoint_dir, seed, data) for seed in seeds}
        config = next(iter(loaded.values()))[1]["provenance"]["config"]
        return cls({s: m for s, (m, _) in loaded.items()}, {s: c["fingerprint"] for s, (_, c) in loaded.items()},
                   TrainConfig(**config))

    def recipe_budget(self) -> Budget:
        """The dense recipe's epochs, learning rate and batch size: the scratch control's budget."""
        return Budget(self.recipe.epochs, self.recipe.lr, self.recipe.batch_size)

    def record(self) -> dict[str, str]:
        """Seed (as text) -> fingerprint, for provenance records."""
        return {str(seed): fingerprint for seed, fingerprint in self.fingerprints.items()}


def retrained(job: Retraining, dense: DenseModels, train_split: Split, cache_dir: str | os.PathLike) -> nn.Module:
    """The network ``job`` makes of the dense model of its seed, loaded from ``cache_dir`` when
    the same record was trained before, else trained and cached."""
    record = job.record(dense.fingerprints[job.seed], train_split)
    stem = f"{job.strategy}-{job.method}-k{job.k:g}-seed{job.seed}"

    def compute() -> tuple[nn.Module, dict]:
        before = job.previous()
        start = dense.models[job.seed] if before is None else retrained(before, dense, train_split, cache_dir)
        return job.run(start, train_split), {}
    return cached(cache_dir, stem, record, compute)[0]
