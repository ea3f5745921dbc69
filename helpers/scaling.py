"""What workers buy: the same training jobs on one worker and on two, timed in paired rounds of one run.

``python -m helpers.scaling --checkpoint-dir artefacts/mnist --out results/mnist/workers.json``
fine-tunes the dense model of seed 0 at a few levels of weight and unit pruning (one epoch of
the full training set each, the forms the study trains: masked dense, CSR, compact), as the
study's jobs (:func:`helpers.study.retraining_jobs`), into a fresh cache folder every time: once
on one worker, once on ``workers``, in alternating order over ``rounds`` rounds, on workers
that have started and loaded their data before the clock starts (as in a sweep, whose workers
serve its jobs for minutes, a start of about 5 s each is not what decides). It writes the
wall seconds of every run and the median of the per-round ratios, with the machine's facts,
and the ceiling those ratios have here: the same matrix product, one thread each, in one
process and in ``workers`` side by side (:func:`ceiling`).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import torch

from . import io
from .jobs import Workers, cores, torch_threads
from .machine import machine_facts
from .retraining import Budget, Retraining
from .strategies import FINETUNE
from .study import Inputs, loaded, retraining_jobs
from .sweep import retrained_evaluation

CASES = (("weight", 50.0), ("weight", 90.0), ("weight", 99.0), ("unit", 50.0), ("unit", 90.0), ("unit", 95.0))
"""Method and level of every job timed: the masked dense form, CSR and the compact forms."""


CEILING_PRODUCT = (256, 784, 1000)
"""The product :func:`ceiling` times: a batch of the study's training through its first layer (m, k, n)."""


def _products(count: int) -> float:  # in a worker process
    """Wall seconds of ``count`` products of :data:`CEILING_PRODUCT` with one torch thread."""
    torch.set_num_threads(1)
    m, k, n = CEILING_PRODUCT
    a, b = torch.randn(m, k), torch.randn(k, n)
    torch.mm(a, b)
    started = time.perf_counter()
    for _ in range(count):
        torch.mm(a, b)
    return time.perf_counter() - started


def ceiling(workers: int, rounds: int = 5, count: int = 500) -> list[float]:
    """What ``workers`` processes give over one on work that shares no data and has no Python
    between its steps: per round, ``workers`` times the seconds of one process doing ``count``
    products over the seconds of ``workers`` processes doing as many each, side by side (the
    most the study's jobs could gain from workers on this machine)."""
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_products, [5] * workers))  # every process started and warm
        ratios = []
        for _ in range(rounds):
            one = pool.submit(_products, count).result()
            ratios.append(workers * one / max(pool.map(_products, [count] * workers)))
    return ratios


def _in_process(inputs: Inputs, made, threads: int) -> list[float]:
    """Wall seconds of every job of ``made``, one after the other in this process with ``threads`` torch threads."""
    data, dense = loaded(inputs)
    before, seconds = torch.get_num_threads(), []
    torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory() as cache:
            for job in made:
                started = time.perf_counter()
                retrained_evaluation(job, dense, data, cache)
                seconds.append(time.perf_counter() - started)
    finally:
        torch.set_num_threads(before)
    return seconds


def measure(inputs: Inputs, workers: int, rounds: int = 4) -> dict:
    """Wall seconds of the jobs of :data:`CASES` on one worker and on ``workers`` (one torch
    thread each, the workers started and their data loaded first), and one after the other in
    this process with ``workers`` threads, ``rounds`` times each in alternating order;
    ``speedup``: the median over rounds of one worker's seconds over ``workers``', and
    ``speedup_threads`` likewise for the threads; and per job, its seconds with one thread and
    with ``workers`` threads (first round)."""
    data, dense = loaded(inputs)
    budget = Budget(1, 1e-3, 256)
    made = [Retraining(FINETUNE.name, method, k, inputs.seeds[0], budget, csr_from_k=90.0) for method, k in CASES]
    seconds: dict[str, list[float]] = {"1 worker": [], f"{workers} workers": [], f"{workers} threads": []}
    per_job: dict[str, list[float]] = {}
    for r in range(rounds):
        order = list(seconds) if r % 2 == 0 else list(reversed(seconds))
        for config in order:
            if config.endswith("threads"):
                jobs_seconds = _in_process(inputs, made, workers)
                seconds[config].append(sum(jobs_seconds))
                per_job.setdefault(config, jobs_seconds)
                continue
            n = 1 if config == "1 worker" else workers
            with tempfile.TemporaryDirectory() as warm, tempfile.TemporaryDirectory() as cache, torch_threads(1), \
                    Workers(n, threads=1) as pool:
                # every worker started, with torch imported and the data and dense models loaded,
                # before the clock starts: so they are in a sweep, whose workers serve its jobs for
                # minutes, and so is the process the threads run in (the n shortest jobs, submitted
                # at once: the pool starts a worker for each)
                pool.run(retraining_jobs(made[-n:], dense, data, replace(inputs, cache_dir=warm)), "workers started")
                fresh = replace(inputs, cache_dir=cache)
                started = time.perf_counter()
                pool.run(retraining_jobs(made, dense, data, fresh), f"{len(made)} jobs on {n} worker(s)")
                seconds[config].append(time.perf_counter() - started)
    per_job.setdefault("1 thread", _in_process(inputs, made, 1))
    ones = seconds["1 worker"]
    ceilings = ceiling(workers)
    return {"jobs": [f"fine-tuning {m} k={k:g}, 1 epoch of {len(data['train']):,} images" for m, k in CASES],
            "workers": workers, "seconds": seconds, "seconds_per_job": per_job,
            "speedup": statistics.median(o / m for o, m in zip(ones, seconds[f"{workers} workers"])),
            "speedup_threads": statistics.median(o / m for o, m in zip(ones, seconds[f"{workers} threads"])),
            "ceiling": statistics.median(ceilings), "ceiling_rounds": ceilings, "machine": machine_facts()}


def inputs_of(checkpoint_dir: Path, data_dir: Path) -> Inputs:
    """The inputs of jobs on the first seed's dense model in ``checkpoint_dir``, with the data
    its record says it was trained on (the same images held out)."""
    record = io.read_json(checkpoint_dir / "dense_models.json")
    return Inputs(record["dataset"], str(data_dir), None, record["train_size"], record["test_size"],
                  str(checkpoint_dir), (record["seeds"][0],), "", record["validation_size"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint-dir", type=Path, default=Path("artefacts/mnist"),
                        help="the dense models and their record, as 02_training wrote them")
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--workers", type=int, default=None, help="the worker count set against one (default: cores)")
    parser.add_argument("--rounds", type=int, default=4, help="paired rounds (each runs the jobs three ways)")
    parser.add_argument("--out", type=Path, default=Path("results/mnist/workers.json"))
    args = parser.parse_args(argv)
    result = measure(inputs_of(args.checkpoint_dir, args.data_dir), args.workers or cores(), args.rounds)
    io.write_json(result, args.out)
    print(f"{result['workers']} workers: {result['speedup']:.2f}x one worker; {result['workers']} threads in one "
          f"process: {result['speedup_threads']:.2f}x; the same product in {result['workers']} processes: "
          f"{result['ceiling']:.2f}x one; wrote {args.out}")


if __name__ == "__main__":
    main()
