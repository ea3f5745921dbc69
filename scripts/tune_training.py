"""Choose the dense training recipe on a validation split held out from the training images.

The test set plays no part: each candidate trains on 55,000 images and is scored on the
5,000 held out. Writes ``results/tuning.csv`` (one row per candidate and epoch).

    python scripts/tune_training.py [--dataset mnist] [--out results/tuning.csv]
"""

import argparse

import pandas as pd
import torch

from helpers import io
from helpers.data import load_dataset, validation_split
from helpers.model import MLP
from helpers.training import train

CANDIDATES = [
    {"batch_size": 128, "lr": 1e-3},
    {"batch_size": 256, "lr": 1e-3},
    {"batch_size": 256, "lr": 2e-3},
]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--dataset", default="mnist")
parser.add_argument("--data-dir", default="data")
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--out", default="results/tuning.csv")
args = parser.parse_args()

data = load_dataset(args.dataset, args.data_dir)
fit, val = validation_split(data["train"], 5_000, seed=0)
frames = []
for candidate in CANDIDATES:
    torch.manual_seed(0)
    model = MLP()
    history = train(model, fit, {"val": val}, epochs=args.epochs, seed=0, **candidate, progress=False)
    frames.append(history.assign(dataset=args.dataset, **candidate))
    last = history.iloc[-1]
    print(candidate, f"val accuracy {last.val_accuracy:.4f}, {history.seconds.mean():.1f} s/epoch", flush=True)
io.write_csv(pd.concat(frames, ignore_index=True), args.out)
