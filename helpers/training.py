"""Training and evaluation on in-memory tensors, with optional fixed pruning masks, and the dense models."""

from __future__ import annotations

import functools
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from . import progress as progress_report, provenance
from .checkpoints import cache_path, cached, select_device
from .checks import non_negative_int, positive_finite, positive_int
from .data import Split, held_out
from .jobs import THREADS, Job, Workers, torch_threads
from .model import MLP, STUDY_HIDDEN
from .pruning import Masks, apply_masks
from .sources import check_name


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator seeded with ``seed`` for shuffling."""
    non_negative_int("seed", seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@torch.inference_mode()
def evaluate(model: nn.Module, split: Split, batch_size: int = 10_000) -> dict[str, float]:
    """Mean cross-entropy ``loss`` and ``accuracy`` (fraction correct) of ``model`` on ``split``."""
    model.eval()
    device = next(model.parameters()).device
    loss_sum, correct = 0.0, 0
    for start in range(0, len(split), batch_size):
        x = split.images[start : start + batch_size].to(device)
        y = split.labels[start : start + batch_size].to(device)
        logits = model(x)
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(dim=1) == y).sum())
    return {"loss": loss_sum / len(split), "accuracy": correct / len(split)}


PRECISIONS = ("fp32", "bf16")
"""Arithmetic of the forward pass in training: float32, or bfloat16 autocast."""


def train(
    model: nn.Module,
    train_split: Split,
    eval_splits: Mapping[str, Split],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    masks: Masks | None = None,
    prune_at: Callable[[int, torch.optim.Optimizer], tuple[nn.Module, Masks] | None] | None = None,
    precision: str = "fp32",
    progress: bool = True,
    description: str = "training",
) -> pd.DataFrame:
    """Train ``model`` in place with Adam and a cosine-decaying learning rate.

    Each epoch visits ``train_split`` once in a seeded random order, in batches sliced from
    the in-memory tensors. With ``masks`` (layer name -> bool, True = kept), pruned weights
    stay exactly zero: their gradients are zeroed before every step (so Adam's moments for
    them stay zero too) and the weights are re-masked after it.

    ``prune_at(step, optimiser)``, when given, is called before optimiser step ``step`` (0, 1,
    ... over the whole run). It may prune and return the network to train from then on with its
    masks, ``(network, masks)`` (else ``None``): the same module, or a smaller form of it whose
    parameters it has handed to ``optimiser`` with their Adam state, the moments of every newly
    pruned weight zeroed (:func:`helpers.recovery.gradual_prune`). One optimiser and one
    learning-rate schedule therefore run through every pruning step.

    ``precision="bf16"`` runs the forward pass under bfloat16 autocast (weights, gradients and
    Adam's state stay float32): faster only where the CPU multiplies bfloat16 natively
    (:func:`helpers.timing.training_throughput` measures it).

    Returns one row per epoch: ``epoch``, ``train_loss`` and ``train_accuracy`` (running means
    over the epoch's batches), ``<name>_loss`` and ``<name>_accuracy`` for every split in
    ``eval_splits`` after the epoch, and ``seconds`` (training time of the epoch alone).
    """
    positive_int("epochs", epochs)
    positive_int("batch_size", batch_size)
    positive_finite("lr", lr)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    generator = seed_everything(seed)
    device = next(model.parameters()).device
    x_all, y_all = train_split.images.to(device), train_split.labels.to(device)
    modules = dict(model.named_modules())

    def fixed(masks: Masks | None) -> list[tuple[nn.Parameter, torch.Tensor]]:
        return [(modules[name].weight, mask.to(device)) for name, mask in (masks or {}).items()]

    masked = fixed(masks)
    if masks:
        apply_masks(model, masks)

    steps_per_epoch = -(-len(train_split) // batch_size)
    # The fused kernel updates all parameters in one pass: several times faster than the
    # default per-tensor loop, which dominated the step time on CPU.
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs * steps_per_epoch)
    rows, step = [], 0
    # the epochs are reported to make report's progress line too, after the sweep they run in
    bar = tqdm(progress_report.track(range(1, epochs + 1), description), total=epochs, desc=description,
               disable=not progress, unit="epoch")
    for epoch in bar:
        model.train()
        start = time.perf_counter()
        order = torch.randperm(len(train_split), generator=generator).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        for batch in order.split(batch_size):
            if prune_at is not None:
                reformed = prune_at(step, optimiser)
                if reformed is not None:
                    model, masks = reformed
                    modules = dict(model.named_modules())
                    masked = fixed(masks)
            step += 1
            x, y = x_all[batch], y_all[batch]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            for weight, mask in masked:
                weight.grad.mul_(mask)
            optimiser.step()
            schedule.step()
            if masked:
                with torch.no_grad():
                    for weight, mask in masked:
                        weight.mul_(mask)
            # Accumulate on the device: no host synchronisation inside the loop.
            loss_sum += loss.detach() * len(batch)
            correct += (logits.argmax(dim=1) == y).sum()
        seconds = time.perf_counter() - start
        row = {
            "epoch": epoch,
            "train_loss": float(loss_sum) / len(train_split),
            "train_accuracy": int(correct) / len(train_split),
        }
        for name, split in eval_splits.items():
            for metric, value in evaluate(model, split).items():
                row[f"{name}_{metric}"] = value
        row["seconds"] = seconds
        rows.append(row)
        bar.set_postfix({k: round(v, 4) for k, v in row.items() if k.endswith("accuracy")})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained dense model besides its data and package versions."""

    dataset: str = "mnist"
    hidden: tuple[int, ...] = STUDY_HIDDEN
    epochs: int = 10
    batch_size: int = 256
    lr: float = 2e-3
    seed: int = 0
    train_size: int | None = None
    validation_size: int = 0  # of the train_size (or all) training images, held out: trained without

    def __post_init__(self) -> None:
        check_name(self.dataset)
        if isinstance(self.hidden, (str, bytes)) or not isinstance(self.hidden, Sequence):
            raise TypeError(f"hidden must be a sequence of layer widths, got {self.hidden!r}")
        object.__setattr__(self, "hidden", tuple(self.hidden))
        MLP(hidden=self.hidden)  # refuses widths that are not positive integers
        positive_int("epochs", self.epochs)
        positive_int("batch_size", self.batch_size)
        positive_finite("lr", self.lr)
        non_negative_int("seed", self.seed)
        if self.train_size is not None and (isinstance(self.train_size, bool) or not isinstance(self.train_size, int)
                                            or self.train_size < 1):
            raise ValueError(f"train_size must be None (all images) or an integer >= 1, got {self.train_size!r}")


def initial_model(seed: int, hidden: Sequence[int]) -> MLP:
    """The dense network of ``seed`` before its training: what :func:`train_dense` starts from,
    and what a lottery ticket rewinds to (:func:`helpers.recovery.rewind`)."""
    torch.manual_seed(seed)
    return MLP(hidden=tuple(hidden))


def dense_provenance(config: TrainConfig, data: Mapping[str, Split]) -> dict:
    """The provenance record of the dense model of ``config`` trained on ``data["train"]`` and
    evaluated on ``data["test"]``: kind, configuration, data fingerprints and package versions."""
    return {"kind": "dense", "dataset": config.dataset, "config": asdict(config),
            "train_data": data["train"].fingerprint, "test_data": data["test"].fingerprint,
            "versions": provenance.versions()}


def _dense_stem(config: TrainConfig) -> str:
    return f"{config.dataset}-dense-seed{config.seed}"


def dense_path(config: TrainConfig, data: Mapping[str, Split], cache_dir: str | os.PathLike) -> Path:
    """Where :func:`train_dense` caches the dense model of ``config`` trained on ``data``."""
    return cache_path(cache_dir, _dense_stem(config), dense_provenance(config, data))


def train_dense(
    config: TrainConfig,
    data: Mapping[str, Split],
    cache_dir: str | os.PathLike,
    *,
    progress: bool = True,
    device: str | torch.device | None = None,
) -> tuple[MLP, pd.DataFrame, Path]:
    """The dense model of ``config`` trained on ``data["train"]`` and evaluated each epoch on
    ``data["test"]``, loaded from ``cache_dir`` when the same configuration, data and package
    versions were trained before (:func:`dense_provenance`).

    Returns ``(model, history, path)``: see :func:`train` for the history's columns; ``path``
    is the cached checkpoint, which carries the history.
    """
    expected = config.train_size - config.validation_size if config.train_size else len(data["train"])
    if len(data["train"]) != expected:
        raise ValueError(f"config asks for {expected} training images ({config.train_size} minus "
                         f"{config.validation_size} held out), data has {len(data['train'])}")

    def compute() -> tuple[MLP, dict]:
        model = initial_model(config.seed, config.hidden).to(select_device(device))
        history = train(model, data["train"], {"test": data["test"]}, epochs=config.epochs,
                        batch_size=config.batch_size, lr=config.lr, seed=config.seed, progress=progress,
                        description=f"{config.dataset} seed {config.seed}")
        return model, {"history": history.to_dict("records")}

    model, checkpoint, path = cached(cache_dir, _dense_stem(config), dense_provenance(config, data), compute)
    return model.to(select_device(device)), pd.DataFrame(checkpoint["history"]), path


@functools.lru_cache(maxsize=2)
def _train_dense_job(config: TrainConfig, source: tuple, cache_dir: str) -> None:  # a job, in a worker
    train_dense(config, held_out(*source), cache_dir, progress=False)


def train_dense_models(configs: Sequence[TrainConfig], data: Mapping[str, Split], source: tuple,
                       cache_dir: str | os.PathLike, *, jobs: int | None = None, scheduler: str | None = None,
                       threads: int = THREADS, progress: bool = False) -> list[tuple[MLP, pd.DataFrame, Path]]:
    """:func:`train_dense` of every configuration of ``configs``, one job each on ``jobs``
    worker processes or the Dask cluster at ``scheduler`` (:class:`helpers.jobs.Workers`),
    then read from the cache in their order. ``source``, ``(dataset, data_dir, archive,
    train_size, test_size, validation_size)``, is how a worker loads ``data`` (once per process,
    :func:`helpers.data.held_out`)."""
    with torch_threads(threads), Workers(jobs, scheduler, threads) as pool:
        pool.check_shared(cache_dir)
        pool.run([Job(str(dense_path(c, data, cache_dir)), f"{c.dataset} dense seed {c.seed}", _train_dense_job,
                      (c, tuple(source), str(cache_dir)), cost=float(c.epochs),
                      about=(("dataset", c.dataset), ("kind", "dense"), ("epochs", c.epochs)))
                  for c in configs], "dense models", show=progress)
        return [train_dense(c, data, cache_dir, progress=False) for c in configs]
