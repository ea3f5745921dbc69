"""The study's training as jobs: each writes one cache entry, waits for the entries it reads, and runs in a worker with one torch thread.

A :class:`Job` is a pure function of its record: it computes one artefact (a dense model, a
retrained network and its evaluation) and writes it to the cache under that record, the
file :attr:`Job.done` names; a job that reads another's artefact (a lottery round, the round
before) names that file in :attr:`Job.after`. :class:`Workers` runs a list of them: every job
whose inputs exist, as soon as a worker is free, the longest first. The workers are local
processes (as many as the cores this process may use, by default) or, when a scheduler address
is given, the workers of a Dask cluster (:class:`distributed.Client` ``.get_executor()``).

Every job runs with :data:`THREADS` torch threads (a parameter), and so does the process that
assembles the results, so the bits of every result are the same whatever the number of workers
or of cores: what still changes them is the thread count itself (recorded with the package
versions in every record, :func:`helpers.provenance.versions`), the CPU's instruction sets and
the package versions (README). By default there are as many workers as the cores hold jobs of
that many threads. Results come
back through the cache folder, which every worker must therefore share with this process: a
cluster whose workers do not see it is refused before any job runs (:meth:`Workers.check_shared`).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import progress as progress_report
from .checks import positive_int

SCHEDULER_CONFIG = "scheduler-address"
"""Dask's configuration key for a scheduler address (environment variable
``DASK_SCHEDULER_ADDRESS``): where jobs go when no address is given as a parameter."""

THREADS = 1
"""Torch threads per job, by default: one, so a 2-core machine runs two workers. It is part of
every record (changing it recomputes the study). ``python -m helpers.scaling``
(``results/mnist/workers.json``) measures what two one-thread workers and two threads per job
each buy over one one-thread worker on this machine: the workers buy more."""

PRELOAD = ("helpers.study", "helpers.training", "torch._dynamo")
"""What the server that local workers are forked from imports once, for every pool this process
starts: the modules whose functions the jobs run, torch with them, and ``torch._dynamo``, which
the first optimiser a process builds imports (1.6 s). A worker of its own interpreter paid these
again, about 4 CPU seconds each; a fork of a one-threaded server that has only imported them
shares them, never a fork of a kernel's threads."""

_SERVER_PRELOAD: tuple[str, ...] | None = None  # what this process's forkserver imports, once asked


def forkserver(preload: Sequence[str]) -> tuple[multiprocessing.context.BaseContext, bool]:
    """:mod:`multiprocessing`'s forkserver context, and whether the server of this process
    imports exactly ``preload``: a process has one server, whose modules are those its first user
    here asked for (the study's workers, :data:`PRELOAD`; the pipeline's kernels,
    :data:`helpers.kernels.PRELOAD`)."""
    global _SERVER_PRELOAD
    context = multiprocessing.get_context("forkserver")
    if _SERVER_PRELOAD is None:
        context.set_forkserver_preload(list(preload))  # heeded when this process starts its server
        _SERVER_PRELOAD = tuple(preload)
    return context, _SERVER_PRELOAD == tuple(preload)


RESTARTS = 3
"""How often a local pool whose worker died (killed, out of memory) is started again, its
unfinished jobs resubmitted, before the run stops."""


@dataclass(frozen=True)
class Job:
    """One artefact to compute in a worker: ``call(*args)`` (a module-level function and
    picklable arguments) writes the cache entry ``done``; it runs once every file of ``after``
    exists. ``label`` names it in messages and progress; ``cost`` (relative, e.g. images times
    epochs) orders the ready jobs, longest first, and estimates the time left."""

    done: str
    label: str
    call: Callable[..., Any]
    args: tuple
    after: tuple[str, ...] = ()
    cost: float = 1.0
    about: tuple[tuple[str, Any], ...] = ()  # what the job log records of it: (column, value) pairs


class JobFailed(RuntimeError):
    """A job raised, or finished without writing its cache entry where this process sees it."""


def cores() -> int:
    """The cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def torch_threads(threads: int = THREADS) -> Iterator[None]:
    """Run the block with ``threads`` torch threads (the thread count changes the bits of a result)."""
    before = torch.get_num_threads()
    torch.set_num_threads(positive_int("threads", threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _in_threads(call: Callable[..., Any], args: tuple, threads: int) -> tuple[float, float]:
    """What a worker runs for a job: ``call(*args)`` with ``threads`` torch threads (a Dask
    worker process is not started by this module, so the thread count is set at every job).
    Returns the CPU seconds and wall seconds it took."""
    torch.set_num_threads(threads)
    # the notebook reports the jobs' progress; a worker's own loops would overwrite its report
    os.environ.pop(progress_report.ENVIRONMENT, None)
    cpu, wall = time.process_time(), time.perf_counter()
    call(*args)
    return time.process_time() - cpu, time.perf_counter() - wall


LOG_ENVIRONMENT = progress_report.LOG_ENVIRONMENT


def _log(job: Job, cpu: float, wall: float) -> None:
    target = os.environ.get(LOG_ENVIRONMENT)
    if target:
        with open(target, "a") as log:
            log.write(json.dumps({**dict(job.about), "entry": Path(job.done).name, "cpu_seconds": round(cpu, 3),
                                  "seconds": round(wall, 3)}) + "\n")


def _written(path: str) -> bool:
    return Path(path).is_file()


def _touch(path: str) -> str:
    Path(path).write_text("shared")
    return path


def scheduler_address(address: str | None = None) -> str | None:
    """The Dask scheduler to send jobs to: ``address``, else Dask's own configuration
    (``DASK_SCHEDULER_ADDRESS``), else None (local worker processes)."""
    if address:
        return address
    if "DASK_SCHEDULER_ADDRESS" not in os.environ:
        return None  # no need to import dask to learn that
    import dask

    return dask.config.get(SCHEDULER_CONFIG, None)


class Workers:
    """The processes jobs run in, for one study: ``workers`` local processes (None: as many as
    :func:`cores` hold jobs of ``threads`` threads, at least one), or the workers of the Dask
    cluster at ``address`` (:func:`scheduler_address`); every job runs with ``threads`` torch
    threads. Use it as a context manager; :meth:`run` runs jobs."""

    def __init__(self, workers: int | None = None, address: str | None = None, threads: int = THREADS) -> None:
        self.address = scheduler_address(address)
        self.threads = positive_int("threads", threads)
        self.workers = max(1, cores() // self.threads) if workers is None else positive_int("jobs", workers)
        self._executor: Executor | None = None
        self._client = None

    def __enter__(self) -> Workers:
        self._start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    def _start(self) -> None:
        if self.address:
            from distributed import Client

            self._client = Client(self.address)
            self._executor = self._client.get_executor()
        else:
            context, _ = forkserver(PRELOAD)  # any server will do: a job's result depends on no import
            self._executor = ProcessPoolExecutor(self.workers, mp_context=context,
                                                 initializer=torch.set_num_threads, initargs=(self.threads,))

    def _stop(self) -> None:
        if isinstance(self._executor, ProcessPoolExecutor):
            self._executor.shutdown(wait=True, cancel_futures=True)
        elif self._executor is not None:
            self._executor.shutdown(wait=True)
        if self._client is not None:
            self._client.close()
        self._executor = self._client = None

    def check_shared(self, cache_dir: str | os.PathLike) -> None:
        """Refuse (``JobFailed``) a cluster whose workers do not share ``cache_dir`` with this
        process, before any job: results come back through it. A worker writes a file there
        that this process must see, and sees one this process wrote."""
        if not self.address:
            return  # local workers share this machine's folders
        folder = Path(cache_dir).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        mine, theirs = folder / f".shared-{uuid.uuid4().hex}", folder / f".shared-{uuid.uuid4().hex}"
        mine.write_text("shared")
        try:
            sees_mine = self._executor.submit(_written, str(mine)).result()
            self._executor.submit(_touch, str(theirs)).result()
            if not (sees_mine and theirs.is_file()):
                raise JobFailed(f"the workers of the Dask cluster at {self.address} do not share the cache folder "
                                f"{folder} with this process, and results come back through it: give the workers "
                                f"and this process one shared folder (cache_dir), or run without a scheduler address")
        finally:
            mine.unlink(missing_ok=True)
            theirs.unlink(missing_ok=True)

    def run(self, jobs: Sequence[Job], description: str = "jobs", show: bool = False) -> None:
        """Run every job of ``jobs`` whose cache entry is not written yet, each once its
        :attr:`Job.after` files exist, the longest ready job first, and report progress under
        ``description`` (:mod:`helpers.progress`). A job that raises stops the run
        (``JobFailed`` naming its label and cache entry; the entry is not written: jobs write
        atomically); a local worker that dies has its jobs run again, up to :data:`RESTARTS`
        times."""
        by_done = {job.done: job for job in jobs}
        pending = [job for job in by_done.values() if not Path(job.done).is_file()]
        made = {job.done for job in pending}
        for job in pending:
            lacking = [a for a in job.after if a not in made and not Path(a).is_file()]
            if lacking:
                raise JobFailed(f"{job.label} reads {lacking}, which no job of this run makes")
        if not pending:
            return
        total = sum(job.cost for job in pending)
        running: dict[Future, Job] = {}
        done: set[str] = set()
        restarts, started, spent = 0, time.monotonic(), 0.0
        bar = progress_report.Countdown(description, len(pending), show)
        try:
            while pending or running:
                ready = sorted((j for j in pending if all(a in done or a not in made for a in j.after)),
                               key=lambda j: -j.cost)
                for job in ready[: max(0, 2 * self.workers - len(running))]:
                    pending.remove(job)
                    running[self._executor.submit(_in_threads, job.call, job.args, self.threads)] = job
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = False
                for future in finished:
                    job = running.pop(future)
                    try:
                        cpu, wall = future.result()
                    except BrokenProcessPool:
                        broken = True
                        pending.append(job)
                        continue
                    except Exception as err:
                        raise JobFailed(f"{job.label} failed (its cache entry {job.done} was not written): "
                                        f"{type(err).__name__}: {err}") from err
                    if not Path(job.done).is_file():
                        raise JobFailed(f"{job.label} finished, but its cache entry {job.done} is not there for "
                                        f"this process: the workers must share the cache folder")
                    _log(job, cpu, wall)
                    done.add(job.done)
                    spent += job.cost
                    elapsed = time.monotonic() - started
                    bar.update(len(done), elapsed / spent * (total - spent) if spent else None)
                if broken:
                    restarts += 1
                    if restarts > RESTARTS:
                        raise JobFailed(f"a worker died {restarts} times; the last jobs running were "
                                        f"{[j.label for j in running.values()]}")
                    pending.extend(running.values())
                    running.clear()
                    self._stop()
                    self._start()
        finally:
            for future in running:
                future.cancel()
            bar.close()
