"""Progress of long loops inside a notebook, shown in the notebook or passed to ``make report``.

A kernel started by :mod:`helpers.pipeline` has :data:`ENVIRONMENT` set to a file path; every
loop wrapped by :func:`track` then writes its name and how far it is to that file (atomically,
at most once a second), and the pipeline shows it beside its own progress bar. Without the
variable, :func:`track` is a tqdm bar, shown only when asked.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from tqdm.auto import tqdm

LOG_ENVIRONMENT = "HELPERS_JOB_LOG"
"""Environment variable naming the file every job that ran appends a JSON line to
(:mod:`helpers.jobs`: its record's summary, CPU seconds and wall seconds), which
:mod:`helpers.pipeline` sums per strategy (:func:`helpers.plan.jobs_cost`)."""

ENVIRONMENT = "HELPERS_PROGRESS_FILE"
"""Environment variable naming the file a kernel reports its loops' progress to."""

T = TypeVar("T")


_ACTIVE: list[dict] = []
"""The tracked loops running now, outermost first (a sweep, then the training run inside it)."""


def _write(path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"loops": _ACTIVE}))
    os.replace(tmp, path)  # a reader sees the old state or the new one, never half of one


def track(items: Sequence[T], description: str, show: bool = False) -> Iterator[T]:
    """Iterate over ``items``; a tqdm bar called ``description`` when ``show``, and a report of
    ``description``, items done and total to the pipeline's progress file when there is one,
    after those of the tracked loops this one runs inside."""
    target = os.environ.get(ENVIRONMENT)
    path = Path(target) if target else None
    state = {"description": description, "done": 0, "total": len(items)}
    _ACTIVE.append(state)
    last = 0.0
    try:
        for done, item in enumerate(tqdm(items, desc=description, disable=not show)):
            state["done"] = done
            now = time.monotonic()
            if path is not None and (now - last >= 1.0 or done == 0):
                _write(path)
                last = now
            yield item
        state["done"] = len(items)
        if path is not None:
            _write(path)
    finally:
        _ACTIVE.remove(state)


class Countdown:
    """Progress of items that finish in any order (jobs on workers): how many are done of
    ``total`` and the seconds left as last estimated, as a tqdm bar called ``description`` when
    ``show`` and in the pipeline's progress file when there is one (like :func:`track`)."""

    def __init__(self, description: str, total: int, show: bool = False) -> None:
        target = os.environ.get(ENVIRONMENT)
        self.path = Path(target) if target else None
        self.state = {"description": description, "done": 0, "total": total, "left": None}
        self.bar = tqdm(total=total, desc=description, disable=not show)
        self.last = 0.0
        _ACTIVE.append(self.state)
        if self.path is not None:
            _write(self.path)

    def update(self, done: int, seconds_left: float | None) -> None:
        """``done`` items finished so far; ``seconds_left`` the estimate of what remains (None: unknown)."""
        self.bar.update(done - self.state["done"])
        self.state.update(done=done, left=None if seconds_left is None else round(seconds_left))
        now = time.monotonic()
        if self.path is not None and (now - self.last >= 1.0 or done == self.state["total"]):
            _write(self.path)
            self.last = now

    def close(self) -> None:
        self.bar.close()
        if self.state in _ACTIVE:
            _ACTIVE.remove(self.state)


def minutes(seconds: float) -> str:
    """``seconds`` for a reader: whole minutes from 90 s on, else seconds."""
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def time_left(this: float, elapsed: float, reported: float | None, later: float) -> float:
    """Seconds a run has left, for its progress line: what the running notebook's jobs estimate
    (``reported``, from the jobs left and their cost), else what it was expected to take
    (``this``, :func:`helpers.plan.expected_seconds`) less the ``elapsed`` seconds, counted
    down to zero; plus what the notebooks still to come are expected to take (``later``). NaN
    when an expectation is unknown."""
    now = reported if reported is not None else max(this - elapsed, 0.0)
    return now + later


def seconds_left(path: Path) -> float | None:
    """The time left the innermost loop of the progress file at ``path`` estimates (None: none does)."""
    try:
        lefts = [loop.get("left") for loop in json.loads(Path(path).read_text())["loops"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    lefts = [left for left in lefts if left is not None]
    return lefts[-1] if lefts else None


def read(path: Path) -> str:
    """What the progress file at ``path`` says, each running loop as ``"weight pruning 12/84"``,
    outermost first, joined by " · " ('' if nothing yet)."""
    try:
        loops = json.loads(Path(path).read_text())["loops"]
        return " · ".join(f"{loop['description']} {loop['done']}/{loop['total']}"
                          + (f" ({minutes(loop['left'])} left)" if loop.get("left") is not None else "")
                          for loop in loops)
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def kernel_environment(path: Path, job_log: Path) -> dict[str, str]:
    """What a notebook's kernel is given to report to: the progress file ``path`` of its loops
    (:data:`ENVIRONMENT`) and the ``job_log`` its jobs append to (:data:`LOG_ENVIRONMENT`)."""
    return {ENVIRONMENT: str(Path(path).resolve()), LOG_ENVIRONMENT: str(Path(job_log).resolve())}


@contextlib.contextmanager
def showing(bar: tqdm, path: Path, describe: Callable[[float, float | None], str]):
    """While the block runs, show what a notebook's kernel reports to ``path`` (its current
    loop and how far it is, :mod:`helpers.progress`; the kernel is told where by
    :func:`kernel_environment`) after the bar, and the bar's description from
    ``describe(seconds elapsed, seconds left as the kernel's jobs estimate)``, every second."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    stop = threading.Event()
    started = time.monotonic()

    def poll() -> None:
        while not stop.wait(1.0):
            bar.set_description(describe(time.monotonic() - started, seconds_left(path)), refresh=False)
            bar.set_postfix_str(read(path), refresh=True)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
        path.unlink(missing_ok=True)
        bar.set_postfix_str("")
