"""What workers buy: the same training jobs on one worker and on two, timed in paired rounds of one run.

``python -m helpers.scaling --checkpoint-dir artefacts/mnist --out results/mnist/workers.json``
fine-tunes the dense model of seed 0 at a few levels of weight and unit pruning (one epoch of
the full training set each, the forms the study trains: masked dense, CSR, compact), as the
study's jobs (:func:`helpers.study.retraining_jobs`), into a fresh cache folder every time: once
on one worker, once on ``workers``, in alternating order over ``rounds`` rounds. It writes the
wall seconds of every run and the median of the per-round ratios, with the machine's facts.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from . import io
from .jobs import Workers, cores, one_thread
from .machine import machine_facts
from .retraining import Budget, Retraining
from .study import Inputs, loaded, retraining_jobs

CASES = (("weight", 50.0), ("weight", 90.0), ("weight", 99.0), ("unit", 50.0), ("unit", 90.0), ("unit", 95.0))
"""Method and level of every job timed: the masked dense form, CSR and the compact forms."""


def measure(inputs: Inputs, workers: int, rounds: int = 2) -> dict:
    """Wall seconds of the jobs of :data:`CASES` on one worker and on ``workers``, ``rounds``
    times each in alternating order, and ``speedup``: the median over rounds of one worker's
    seconds over ``workers``'."""
    data, dense = loaded(inputs)
    budget = Budget(1, 1e-3, 256)
    made = [Retraining("finetune", method, k, inputs.seeds[0], budget, csr_from_k=90.0) for method, k in CASES]
    seconds: dict[int, list[float]] = {1: [], workers: []}
    for r in range(rounds):
        for n in (1, workers) if r % 2 == 0 else (workers, 1):
            with tempfile.TemporaryDirectory() as cache, one_thread(), Workers(n) as pool:
                fresh = replace(inputs, cache_dir=cache)
                started = time.perf_counter()
                pool.run(retraining_jobs(made, dense, data, fresh), f"{len(made)} jobs on {n} worker(s)")
                seconds[n].append(time.perf_counter() - started)
    ratios = [one / many for one, many in zip(seconds[1], seconds[workers])]
    return {"jobs": [f"fine-tuning {m} k={k:g}, 1 epoch of {len(data['train']):,} images" for m, k in CASES],
            "workers": workers, "seconds_1_worker": seconds[1], f"seconds_{workers}_workers": seconds[workers],
            "speedup": statistics.median(ratios), "machine": machine_facts()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint-dir", type=Path, default=Path("artefacts/mnist"),
                        help="the dense models and their record, as 02_training wrote them")
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--workers", type=int, default=None, help="the worker count set against one (default: cores)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("results/mnist/workers.json"))
    args = parser.parse_args(argv)
    record = io.read_json(args.checkpoint_dir / "dense_models.json")
    inputs = Inputs(record["dataset"], str(args.data_dir), None, record["train_size"], record["test_size"],
                    str(args.checkpoint_dir), (0,), "", 1)
    result = measure(inputs, args.workers or cores(), args.rounds)
    io.write_json(result, args.out)
    print(f"{result['workers']} workers: {result['speedup']:.2f}x one worker; wrote {args.out}")


if __name__ == "__main__":
    main()
