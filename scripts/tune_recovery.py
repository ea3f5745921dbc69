"""Choose the fine-tuning and gradual-pruning budgets on a validation split held out from the
training images.

The test set plays no part. A dense study model trains on 55,000 training images (10 epochs,
seed 0, the batch size and learning rate of :class:`helpers.training.TrainConfig` unless
``--batch-size`` / ``--dense-lr`` say otherwise; cached in ``artefacts/tuning/``); fine-tuning
and gradual pruning use the same batch size. The 5,000 held out score, for
weight pruning at k = 97.5 and 99 % and unit pruning at k = 90 %:
one-shot pruning; one-shot pruning then fine-tuning with the mask fixed, for each
(epochs, lr) budget; gradual pruning with the cubic schedule over the same epochs.
Then, for two low levels (weight 80 %, unit 50 %), the chosen budgets are checked to do no
harm. Writes ``results/tuning_recovery.csv``, one row per run (rewritten after each run, so
an interrupted run resumes with ``--resume``). The grid is :data:`GRID`: the first rows
compare small budgets; later rows, added after them, try larger learning rates. Its runs
trained for about 34 minutes on one core of a busy shared machine (``seconds`` column), on
top of the dense model (about 2 minutes).

    python scripts/tune_recovery.py [--dataset mnist] [--threads 1] [--resume]
"""

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from helpers import io
from helpers.data import load_dataset, validation_split
from helpers.cost import sparsity
from helpers.pruning import prune
from helpers.recovery import finetune, gradual_prune
from helpers.training import TrainConfig, evaluate, train_dense

ROOT = Path(__file__).resolve().parents[1]
CASES = [("weight", 97.5), ("weight", 99.0), ("unit", 90.0)]
CHECK_CASES = [("weight", 80.0), ("unit", 50.0)]
"""Low levels, where one-shot pruning barely hurts: does the chosen budget do no harm there?"""
GRID = [
    # a first grid (epochs 1-3, lr 3e-4 and 1e-3: lr 1e-4 was tried once, lowering accuracy
    # after 1 epoch) showed accuracy rising with lr, so larger learning rates were added
    *[(procedure, epochs, lr) for epochs in (1, 2, 3) for procedure in ("finetune", "gradual")
      for lr in (3e-4, 1e-3)],
    *[(procedure, 3, lr) for procedure in ("finetune", "gradual") for lr in (2e-3, 4e-3)],
    ("finetune", 2, 4e-3), ("finetune", 5, 4e-3),
    ("finetune", 1, 8e-3), ("finetune", 2, 8e-3), ("finetune", 3, 8e-3), ("gradual", 3, 8e-3),
    ("finetune", 3, 1.6e-2),
]
"""(procedure, epochs, lr) runs for every case, cheapest budgets first."""
CHECK_GRID = [("finetune", 3, 8e-3), ("finetune", 2, 8e-3)]
TARGETS = {("dense", 0.0): 0.985, ("weight", 97.5): 0.980, ("weight", 99.0): 0.975, ("unit", 90.0): 0.975}
"""Accuracy the report aims at (on the test set, mean of 3 seeds); compared here on validation."""

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--dataset", default="mnist")
parser.add_argument("--data-dir", default=str(ROOT / "data"))
parser.add_argument("--cache-dir", default=str(ROOT / "artefacts" / "tuning"))
parser.add_argument("--out", default=str(ROOT / "results" / "tuning_recovery.csv"))
parser.add_argument("--train-size", type=int, default=None, help="first N training images only (smoke runs)")
parser.add_argument("--val-size", type=int, default=5_000)
parser.add_argument("--batch-size", type=int, default=TrainConfig().batch_size, help="dense training and recovery")
parser.add_argument("--dense-lr", type=float, default=TrainConfig().lr)
parser.add_argument("--prune-every", type=int, default=50, help="optimiser steps between gradual pruning steps")
parser.add_argument("--ramp", type=float, default=0.5, help="fraction of training over which gradual pruning ramps")
parser.add_argument("--epochs", type=int, nargs="+", default=None,
                    help="instead of the default grid: these budgets x the learning rates below")
parser.add_argument("--finetune-lrs", type=float, nargs="*", default=[])
parser.add_argument("--gradual-lrs", type=float, nargs="*", default=[])
parser.add_argument("--no-check", action="store_true", help="skip the low-level check cases")
parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is faster on a busy machine)")
parser.add_argument("--resume", action="store_true", help="keep the rows of --out and skip their runs")
args = parser.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)

data = load_dataset(args.dataset, args.data_dir, train_size=args.train_size)
fit, val = validation_split(data["train"], args.val_size, seed=0)
del data  # the test split is not used here
config = TrainConfig(dataset=args.dataset, train_size=len(fit), batch_size=args.batch_size, lr=args.dense_lr)
# The validation split stands in for the test split: the dense model is evaluated on it.
dense, history, path = train_dense(config, {"train": fit, "test": val}, args.cache_dir, progress=False, device="cpu")
print(f"dense model {path}: {history.seconds.sum():.0f} s of training", flush=True)

KEY = ["batch_size", "dense_lr", "method", "k", "procedure", "epochs", "lr"]
rows = io.read_csv(args.out).to_dict("records") if args.resume and Path(args.out).is_file() else []
done = {tuple(row[c] for c in KEY) for row in rows}


def run(method, k, procedure, epochs, lr, make):
    """Run ``make()`` -> model unless this run is in the table already; record its validation score."""
    if (config.batch_size, config.lr, method, k, procedure, epochs, lr) in done:
        return
    start = time.perf_counter()
    model = make()
    seconds = time.perf_counter() - start
    metrics = evaluate(model, val)
    target = TARGETS.get((method, k))
    rows.append({
        "dataset": args.dataset, "batch_size": config.batch_size, "dense_lr": config.lr, "method": method, "k": k, "procedure": procedure, "epochs": epochs,
        "lr": lr, "val_accuracy": metrics["accuracy"], "val_loss": metrics["loss"],
        "sparsity": sparsity(model), "target": target,
        "reached": None if target is None else metrics["accuracy"] >= target, "seconds": round(seconds, 1),
    })
    print(f"{method:>6} k={k:<5g} {procedure:<9} epochs={epochs} lr={lr:<7g} "
          f"val {metrics['accuracy']:.4f} ({seconds:.0f} s)", flush=True)
    io.write_csv(pd.DataFrame(rows), args.out)


run("dense", 0.0, "dense", config.epochs, config.lr, lambda: dense)
common = {"batch_size": config.batch_size, "seed": 0}
pruned = {(method, k): prune(dense, k, method) for method, k in CASES}
for (method, k), model in pruned.items():
    run(method, k, "one-shot", 0, 0.0, lambda: model)


def recover(method, k, procedure, epochs, lr):
    if procedure == "finetune":
        return finetune(pruned[method, k], fit, {}, epochs=epochs, lr=lr, **common)[0]
    return gradual_prune(dense, fit, {}, k=k, method=method, epochs=epochs, lr=lr,
                         prune_every=args.prune_every, ramp=args.ramp, **common)[0]


if args.epochs:
    grid = [(procedure, epochs, lr) for epochs in args.epochs
            for procedure, lrs in (("finetune", args.finetune_lrs), ("gradual", args.gradual_lrs)) for lr in lrs]
else:
    grid = GRID
for procedure, epochs, lr in grid:
    for method, k in CASES:
        run(method, k, procedure, epochs, lr, lambda: recover(method, k, procedure, epochs, lr))
if not args.no_check:
    for method, k in CHECK_CASES:
        pruned[method, k] = prune(dense, k, method)
        run(method, k, "one-shot", 0, 0.0, lambda: pruned[method, k])
        for procedure, epochs, lr in CHECK_GRID:
            run(method, k, procedure, epochs, lr, lambda: recover(method, k, procedure, epochs, lr))
print(f"wrote {args.out}")
