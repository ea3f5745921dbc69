"""Run the report's notebooks in order with papermill and render them to HTML.

    python -m helpers.pipeline [--reports reports] [--results results] [--figures figures]
        [--artefacts artefacts] [--data-dir data] [--small]

Every notebook gets the file paths it reads and writes as parameters, so the same
notebooks serve the full report and the small run (``make small``, which the tests run).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import Any

import nbformat
import pandas as pd
import papermill
from nbconvert import HTMLExporter
from tqdm.auto import tqdm

from . import cache, io, jobs as jobs_module, kernels, parameters, plan, progress, provenance, report
from .parameters import SOURCE_DIR
from .sources import DATASETS, check_name
from .strategies import GRADUAL, LAYER, RANKINGS, STRATEGIES, named

NOTEBOOKS = (
    "01_data_exploration",
    "02_training",
    "03_weight_pruning",
    "04_unit_pruning",
    "05_comparison",
)

_SMOKE_DATA = {"train_size": 1_000, "test_size": 500, "seeds": [0, 1], "validation_size": 200}
_SMOKE_PRUNING = {**_SMOKE_DATA, "ks": [0, 50, 90, 99], "recovery_epochs": 1, "target_epochs": 2, "longest_epochs": 3,
                  "tune_ks": [50, 99], "tune_lrs": [1e-3, 8e-3],
                  "recovery_batch_size": 32}
SMOKE: dict[str, dict[str, Any]] = {
    "02_training": {**_SMOKE_DATA, "epochs": 1},
    "03_weight_pruning": {**_SMOKE_PRUNING, "target_ks": [99], "control_ks": [90]},
    "04_unit_pruning": {**_SMOKE_PRUNING, "target_ks": [90], "control_ks": [90]},
}
"""Parameters that shrink the run to ``make small`` (``--small``), which the tests run: a data
subset, two seeds, one epoch, four levels, two learning rates tried at two levels, the controls at
one level (iterative rounds of 40 %); retraining in batches of 32, so that gradual pruning on so
few images still prunes in steps."""

_FINE_TUNED = [s for s in named(STRATEGIES, control=False, rounds=False) if s != GRADUAL.name]
STUDIES: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "report": {
        "fashion_mnist": {
            "02_training": {"seeds": [0, 1, 2]},
            "03_weight_pruning": {"strategies": _FINE_TUNED, "rankings": [], "control_ks": [],
                                  "ks": [0, 50, 80, 90, 95, 97.5, 99, 99.5, 99.8], "tune_ks": [50, 90, 99.5],
                                  "target_ks": [99.5]},
            "04_unit_pruning": {"strategies": _FINE_TUNED, "control_ks": [], "ks": [0, 25, 50, 75, 90, 95, 99],
                                "tune_ks": [25, 75, 90], "target_ks": [90]},
            "05_comparison": {"quick_benchmark": True},
        },
    },
    "extended": {
        dataset: {
            "03_weight_pruning": {"strategies": list(STRATEGIES), "imp_rate": 0.2, "sweep_seeds": None, "longest_epochs": 10,
                                  "rankings": [r for r in RANKINGS if r != LAYER.name],
                                  "ks": [0, 25, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 97.5, 99, 99.2, 99.5, 99.7, 99.8],
                                  "target_ks": [97.5, 99, 99.2, 99.5, 99.7], "control_ks": [90, 97.5, 99.2, 99.7],
                                  "ranking_ks": [90, 95, 99, 99.7]},
            "04_unit_pruning": {"strategies": list(STRATEGIES), "imp_rate": 0.2, "sweep_seeds": None, "longest_epochs": 10},
        } for dataset in DATASETS
    },
}
"""Per study, dataset and notebook, the parameters that replace the notebooks' defaults.
``report`` is what ``make report`` runs in under two hours on a 2-core machine: the notebooks'
defaults on MNIST; Fashion-MNIST, a replication, on 3 seeds with one-shot pruning and
fine-tuning only, at fewer levels, and its speed measured by the quick benchmark (the
same shapes as MNIST's). ``extended`` is the study the papers' settings ask for, for more cores
or a cluster: 20 % of the survivors per round, every strategy and ranking on both methods and
datasets, every seed everywhere, the finer level grid, and the longest budget (10 epochs at the
target levels for the strategy validation ranks first) (README, Cost)."""


@dataclass(frozen=True)
class Layout:
    """Where a run reads and writes; each dataset gets its own sub-folder of each."""

    reports: Path = Path("reports")
    results: Path = Path("results")
    figures: Path = Path("figures")
    artefacts: Path = Path("artefacts")
    data_dir: Path = Path("data")

    def parameters(self, dataset: str) -> dict[str, dict[str, Any]]:
        """Each notebook's dataset and file-path parameters for ``dataset``."""
        data = {"dataset": dataset, "data_dir": str(self.data_dir)}
        results = self.results / dataset
        models = str(self.artefacts / dataset)
        figures = str(self.figures / dataset)
        return {
            "01_data_exploration": {**data, "figures_dir": figures,
                                    "summary_path": str(results / "data_summary.json")},
            "02_training": {**data, "cache_dir": str(self.artefacts / "cache"), "checkpoint_dir": models,
                            "history_path": str(results / "training.csv"), "figures_dir": figures},
            "03_weight_pruning": {**data, "checkpoint_dir": models, "figures_dir": figures,
                                  "cache_dir": str(self.artefacts / "cache"),
                                  "results_path": str(results / "weight_pruning.csv"),
                                  "sensitivity_path": str(results / "weight_sensitivity.csv"),
                                  "tuning_path": str(results / "weight_tuning.csv")},
            "04_unit_pruning": {**data, "checkpoint_dir": models, "figures_dir": figures,
                                "cache_dir": str(self.artefacts / "cache"),
                                "results_path": str(results / "unit_pruning.csv"),
                                "sensitivity_path": str(results / "unit_sensitivity.csv"),
                                "tuning_path": str(results / "unit_tuning.csv")},
            "05_comparison": {"weight_results_path": str(results / "weight_pruning.csv"),
                              "unit_results_path": str(results / "unit_pruning.csv"),
                              "checkpoint_dir": models, "cache_dir": str(self.artefacts / "cache"),
                              "pruning_results_path": str(results / "pruning.csv"),
                              "findings_path": str(results / "findings.csv"),
                              "levels_path": str(results / "levels.csv"),
                              "targets_path": str(results / "targets.csv"),
                              "frontier_path": str(results / "frontier.csv"),
                              "efficiency_path": str(results / "efficiency.csv"),
                              "machine_path": str(results / "efficiency_machine.json"),
                              "figures_dir": figures},
        }


SMALL = Layout(Path("runs/reports"), Path("runs/results"), Path("runs/figures"), Path("runs/artefacts"))
"""Where ``make small`` (``--small``) writes: in ``runs/``, beside what notebooks run by hand
write with their default paths, never in the committed report."""


_ADDRESS = re.compile(r" at 0x[0-9a-f]+>")
_STYLER_ID = re.compile(r"\bT_[0-9a-f]{5}(?=[_\"\s])")
VOLATILE_CELL_METADATA = ("papermill", "execution")
"""Cell metadata that changes on every run (timings, timestamps) and is removed from executed notebooks."""


def strip_volatile(book: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove, in place, what changes on every run without the results changing: execution
    timestamps and durations of the notebook and its cells, the paths papermill ran between,
    the random id papermill gives the cell it injects (made ``injected-parameters``) and the
    random ids pandas gives styled tables (``T_1a2b3``, numbered in order of appearance) and
    memory addresses in the plain-text form of objects (``<Styler at 0x7f...>``); the
    parameters papermill injected are kept. Returns ``book``."""
    run = book.metadata.get("papermill", {})
    book.metadata["papermill"] = {"parameters": run.get("parameters", {})}
    for cell in book.cells:
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "injected-parameters"
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/plain")
            if text:
                output["data"]["text/plain"] = _ADDRESS.sub(">", text)
            html = output.get("data", {}).get("text/html")
            if html:
                ids = dict.fromkeys(_STYLER_ID.findall(html))
                for n, table_id in enumerate(ids, 1):
                    html = html.replace(table_id, f"T_{cell.get('id', 'cell')}-{n}")
                output["data"]["text/html"] = html
    return book


def execute(name: str, params: dict[str, Any], out_dir: Path, failed_dir: Path, cwd: Path | None = None,
            kernel: kernels.LocalKernelManager | None = None) -> Path:
    """Run source notebook ``name`` with ``params`` into ``out_dir/<name>.ipynb`` and return that path.

    The notebook runs into a temporary file, which replaces the previous executed notebook
    only when every cell succeeded (volatile metadata stripped: :func:`strip_volatile`). A
    failed run is kept for inspection as ``failed_dir/<name>.ipynb`` and the error re-raised.
    It runs in ``kernel`` (:mod:`helpers.kernels`; the caller stops it), else in a kernel of its own.
    """
    executed = out_dir / f"{name}.ipynb"
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{name}.running.ipynb"
    try:
        # written once, at the end or at the failing cell: rewriting it around every cell (papermill's
        # default) copies every figure so far each time, and nothing reads it before the end
        papermill.execute_notebook(SOURCE_DIR / f"{name}.ipynb", tmp, parameters=params,
                                   cwd=str(cwd or Path.cwd()), progress_bar=False, request_save_on_cell_execute=False,
                                   kernel_manager_class=kernels.LocalKernelManager, km=kernel)
    except BaseException:
        if tmp.is_file():
            failed_dir.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, failed_dir / f"{name}.ipynb")
            print(f"{name} failed; the executed notebook is kept at {failed_dir / f'{name}.ipynb'}", flush=True)
        raise
    book = strip_volatile(nbformat.read(tmp, as_version=4))
    io.atomic_write(executed, lambda path: nbformat.write(book, path))
    tmp.unlink()
    return executed


TEMPLATES = Path(__file__).resolve().parent / "templates"
"""The report's nbconvert template (``report``: the lab template without CDN scripts)."""


def render_html(notebook: Path) -> Path:
    """Write ``notebook`` as HTML beside it without code cells' input (what ``--no-input`` does),
    self-contained: images inline, no script fetched from elsewhere."""
    exporter = HTMLExporter(template_name="report", extra_template_basedirs=[str(TEMPLATES)], exclude_input=True,
                            exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    return io.atomic_write(notebook.with_suffix(".html"), lambda tmp: tmp.write_text(body))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def package_digest() -> str:
    """SHA-256 over the source of :mod:`helpers` and its templates: a changed helper is a changed notebook."""
    root = Path(__file__).resolve().parent
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".j2", ".json"))
    return hashlib.sha256("".join(f"{p.relative_to(root)}:{_sha256(p)}\n" for p in files).encode()).hexdigest()


def run_key(name: str, params: dict[str, Any], earlier: Sequence[Path]) -> str:
    """What an executed notebook depends on: its source, its parameters, the package's source,
    package versions and machine, and the executed notebooks run before it for the same dataset
    (which show every result it can read). Equal keys give equal executed notebooks."""
    return provenance.digest({"source": _sha256(SOURCE_DIR / f"{name}.ipynb"), "parameters": params,
                              "helpers": package_digest(), "versions": provenance.versions(),
                              "machine": provenance.machine(), "earlier": [_sha256(p) for p in earlier]})


def _outputs_exist(params: dict[str, Any], cwd: Path) -> bool:
    """Whether every file and folder the notebook's parameters name for it to write (or read)
    is there: a deleted results file or model folder makes the notebook run again."""
    named = [v for k, v in params.items() if k.endswith(("_path", "_dir")) and k not in ("data_dir", "cache_dir")]
    return all((cwd / v).exists() for v in named)


def _check_current(params: dict[str, Any], executed: Path, record: Path, key: str, cwd: Path) -> None:
    """Raise ValueError saying why ``executed`` is not what running its notebook with inputs
    ``key`` would write now (see :func:`executed_notebook`)."""
    stored = io.read_json(record)
    if stored.get("key") != key:
        raise ValueError("its inputs changed")
    if not executed.is_file() or stored.get("executed") != _sha256(executed):
        raise ValueError(f"{executed} is not the notebook that run wrote")
    if not _outputs_exist(params, cwd):
        raise ValueError("a file it wrote is missing")


def up_to_date(params: dict[str, Any], executed: Path, record: Path, key: str, cwd: Path) -> bool:
    """Whether :func:`executed_notebook` would find ``executed`` up to date (and not run it)."""
    try:
        _check_current(params, executed, record, key, cwd)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def executed_notebook(params: dict[str, Any], executed: Path, record: Path, key: str, cwd: Path,
                      execute_it: Callable[[], None], force: bool = False) -> bool:
    """Run ``execute_it`` (which writes the executed notebook ``executed``) unless ``executed`` is
    what it would write now, as the cache of :mod:`helpers.cache` reuses an entry: ``record``
    (left by the run that wrote it, in the artefacts, so a fresh clone runs everything) holds
    ``key`` and the SHA-256 of ``executed``, and every path ``params`` names exists. Returns
    whether it was up to date (not run); ``force`` runs it regardless."""
    def load(stored_at: Path) -> bool:
        _check_current(params, executed, stored_at, key, cwd)
        return True

    def run_it() -> bool:
        execute_it()
        io.write_json({"key": key, "executed": _sha256(executed)}, record)
        return False
    return run_it() if force else cache.reuse(record, load, run_it)


MERGED = ("pruning.csv", "training.csv", "findings.csv", "levels.csv", "targets.csv", "frontier.csv", "efficiency.csv")
"""Per-dataset results concatenated into one file of ``Layout.results`` (each has a dataset column)."""


def merge_results(results: Path, datasets: Sequence[str]) -> list[Path]:
    """Concatenate each dataset's :data:`MERGED` files into ``results/<file>``, each with a
    provenance record naming its sources and their SHA-256; returns the paths."""
    written = []
    for name in MERGED:
        sources = [results / d / name for d in datasets]
        frame = pd.concat([io.read_csv(p).assign(dataset=d) for p, d in zip(sources, datasets)], ignore_index=True)
        record = {"sources": {str(p.relative_to(results)): hashlib.sha256(p.read_bytes()).hexdigest()
                              for p in sources}}
        io.write_csv(frame, results / name, record)
        written.append(results / name)
    return written


def studied(layout: Layout, datasets: Sequence[str], study: str = "report",
            overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """Per dataset and notebook, the parameters a run gives: the paths of ``layout``, then the
    parameters of ``study`` (:data:`STUDIES`), then ``overrides`` (per notebook name)."""
    overrides = overrides or {}
    return {dataset: {name: {**params, **STUDIES[study].get(dataset, {}).get(name, {}), **overrides.get(name, {})}
                      for name, params in layout.parameters(dataset).items()} for dataset in datasets}


def _busy_cores(cost: Path) -> float:
    """How many cores a run's training keeps busy, as the last run at ``cost`` measured it
    (:func:`helpers.plan.busy_cores`), else every core this process may use."""
    measured = io.read_csv(cost) if cost.is_file() else None
    busy = plan.busy_cores(measured) if measured is not None and "cpu_seconds" in measured else math.nan
    return busy if busy == busy else float(jobs_module.cores())  # no training measured: every core busy


def run(
    layout: Layout,
    datasets: Sequence[str] = ("mnist",),
    overrides: dict[str, dict[str, Any]] | None = None,
    cwd: Path | None = None,
    quick_benchmark: bool = False,
    force: bool = False,
    jobs: int | None = None,
    scheduler: str | None = None,
    threads: int | None = None,
    study: str = "report",
) -> list[Path]:
    """Execute every notebook for every dataset into ``layout.reports/<dataset>``, render each
    to HTML, merge the results across datasets and write the index page.

    The comparison notebook has :mod:`helpers.benchmark` measure the speed and size of the
    compact pruned forms of the first seed's dense model (``quick_benchmark``: few levels and
    repeats). ``study`` names the parameters of :data:`STUDIES` that replace the notebooks'
    defaults per dataset; ``overrides`` adds or replaces parameters per notebook name on top.
    Returns the HTML pages.

    A notebook whose inputs did not change since this layout's last run of it (:func:`run_key`,
    :func:`executed_notebook`) is not run again, unless ``force``: its executed notebook and page stay.
    A notebook that fails stops the run (papermill raises), leaving the earlier outputs.

    The notebooks that train run their jobs of ``threads`` torch threads (None: the notebooks'
    default) on ``jobs`` worker processes (None: as many as the cores hold) or on the Dask
    cluster at ``scheduler`` (:mod:`helpers.jobs`). Every job that ran is logged,
    and :data:`helpers.plan.JOBS_COST_FILE` sums their CPU seconds per strategy and budget; :data:`helpers.plan.COST_FILE`
    gives every notebook's wall and CPU seconds (its kernel's and its workers').
    """
    overrides = overrides or {}
    unknown = set(overrides) - set(NOTEBOOKS)
    if unknown:
        raise ValueError(f"overrides for unknown notebooks {sorted(unknown)}; accepted: {list(NOTEBOOKS)}")
    for dataset in datasets:
        check_name(dataset)
    if study not in STUDIES:
        raise ValueError(f"unknown study {study!r}; accepted: {list(STUDIES)}")
    # Every notebook's parameters are checked before the first one runs, and every path they
    # write: a typo or a read-only folder in the last notebook's must not surface after an hour
    # of training.
    given = studied(layout, datasets, study, overrides)
    for by_notebook in given.values():
        by_notebook["05_comparison"].setdefault("quick_benchmark", quick_benchmark)
        for name, params in by_notebook.items():
            declared = parameters.declared(name)
            params.update({k: v for k, v in (("jobs", jobs), ("scheduler", scheduler), ("threads", threads))
                           if v is not None and k in declared})
    for by_notebook in given.values():
        for name, params in by_notebook.items():
            parameters.prepare_outputs(parameters.check(params, name), name)
    steps = [(dataset, name, params) for dataset, by_notebook in given.items() for name, params in by_notebook.items()]
    previous = plan.previous_cost(layout.results / plan.COST_FILE)
    cache_dir = layout.artefacts / "cache"
    cost = []
    # beside the cache and cleared with it (make clean): the cost of every job that trained its
    # entries, so a run stopped and started again still prices the whole study
    job_log = cache_dir.parent / "jobs.jsonl"
    job_log.parent.mkdir(parents=True, exist_ok=True)
    # the time each notebook will take, known before it runs: its jobs as make plan prices them
    # (or none, if its inputs are those of its last run), and its own work as the last run measured it
    busy = _busy_cores(layout.results / plan.COST_FILE)
    training = plan.training_seconds(plan.estimate(plan.planned_jobs(given, {d: plan.TRAIN_IMAGES for d in datasets}),
                                                   layout.results / plan.JOBS_COST_FILE), busy)
    workdir = Path(cwd or Path.cwd())

    def executed_at(dataset: str, name: str) -> Path:
        return layout.reports / dataset / f"{name}.ipynb"

    def record_of(dataset: str, name: str) -> Path:
        return layout.artefacts / "notebooks" / f"{dataset}-{name}.json"

    def key_of(j: int) -> str:
        dataset, name, params = steps[j]
        return run_key(name, params, [executed_at(d, n) for d, n, _ in steps[:j] if d == dataset])

    def state(j: int) -> str:
        dataset, name, params = steps[j]
        earlier = [executed_at(d, n) for d, n, _ in steps[:j] if d == dataset]
        # a notebook before it not executed yet: it will run, and this one with what it writes
        current = all(p.is_file() for p in earlier) and up_to_date(
            params, executed_at(dataset, name), record_of(dataset, name), key_of(j), workdir)
        return ("forced" if force else "up to date") if current else "changed"

    def expected(j: int) -> tuple[float, float]:
        return plan.expected_seconds(steps[j][0], steps[j][1], state(j), previous, training)

    def progress_file(j: int) -> Path:
        return layout.artefacts / f"progress-{steps[j][0]}-{steps[j][1]}.json"

    def kernel_environment(j: int) -> dict[str, str]:  # where the kernel of step j reports (progress.showing reads it)
        return {**os.environ, **progress.kernel_environment(progress_file(j), job_log)}

    ahead = kernels.Ahead()
    # a page is rendered in a thread of this process while the next notebook runs in its kernel
    renderer = ThreadPoolExecutor(1, thread_name_prefix="render")
    rendered: list[Path | Future] = []
    bar = tqdm(steps, desc="report", unit="notebook", dynamic_ncols=True)
    taken, own, trains = 0.0, 0.0, 0.0  # this run's seconds so far, and the own work and training expected of them
    try:
        for i, (dataset, name, params) in enumerate(bar):
            # again at every notebook: one that ran may have changed what the next ones read;
            # the training planned is taken at the pace this run has trained at so far
            pace = plan.training_pace(taken, own, trains)
            expectations = [expected(j) for j in range(i, len(steps))]
            this, later = (sum(o + t * pace for o, t in e) for e in (expectations[:1], expectations[1:]))

            def describe(elapsed: float, reported: float | None, dataset=dataset, name=name, this=this,
                         later=later) -> str:
                left = progress.time_left(this, elapsed, reported, later)
                return f"{dataset} {name}" + (f" (about {progress.minutes(left)} left)" if left == left else "")
            bar.set_description(describe(0.0, None))
            (layout.reports / dataset).mkdir(parents=True, exist_ok=True)
            before = set(cache_dir.glob("*"))
            started, used = time.perf_counter(), []
            executed, record, key = executed_at(dataset, name), record_of(dataset, name), key_of(i)

            def execute_it(i=i, name=name, params=params, dataset=dataset, used=used) -> None:
                with progress.showing(bar, progress_file(i), describe):
                    kernel = ahead.take(i) or kernels.started(kernel_environment(i), workdir)
                    try:
                        # the next notebook that will run gets its kernel while this one runs
                        coming = next((j for j in range(i + 1, len(steps)) if state(j) != "up to date"), None)
                        if coming is not None:
                            ahead.start(coming, kernel_environment(coming), workdir)
                        execute(name, params, layout.reports / dataset, layout.artefacts / "failed" / dataset, cwd,
                                kernel)
                        used.append(kernels.cpu_seconds(kernel))  # the kernel's and its workers'
                    finally:
                        kernels.shut_down(kernel)
            skipped = executed_notebook(params, executed, record, key, workdir, execute_it, force)
            if skipped:
                ahead.discard(i)  # started ahead for a notebook that turned out up to date
            html = executed.with_suffix(".html")
            rendered.append(html if skipped and html.is_file() else renderer.submit(render_html, executed))
            seconds = time.perf_counter() - started
            if not skipped and all(x == x for x in expectations[0]):
                taken, own, trains = taken + seconds, own + expectations[0][0], trains + expectations[0][1]
            cached = set(cache_dir.glob("*")) <= before  # wrote nothing new to the cache
            row = {"dataset": dataset, "notebook": name, "seconds": round(seconds, 1),
                   "cpu_seconds": round(sum(used), 1), "cached": cached}
            # a notebook not run keeps the cost of the run that made its executed notebook
            cost.append(previous.get((dataset, name), row) if skipped else row)
            bar.write(f"{dataset} {name}: {seconds:.0f} s" + (" (up to date: not run)" if skipped else
                                                              " (everything cached)" if cached else ""))
    finally:
        ahead.close()  # a kernel started for a notebook that never came
        renderer.shutdown()
    pages = [p.result() if isinstance(p, Future) else p for p in rendered]  # a page that failed fails the run
    bar.close()
    merge_results(layout.results, datasets)
    io.write_csv(pd.DataFrame(cost), layout.results / plan.COST_FILE)
    if job_log.is_file():  # else nothing trained: the last run's file stays, as cost.csv's rows do
        io.write_csv(plan.jobs_cost(job_log), layout.results / plan.JOBS_COST_FILE)
    report.write_index(layout.reports, layout.results, layout.figures, datasets)
    return pages


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run and render the report's notebooks.")
    for field in ("reports", "results", "figures", "artefacts"):
        parser.add_argument(f"--{field}", type=Path, default=None,
                            help=f"default: {getattr(Layout(), field)} (--small: {getattr(SMALL, field)})")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", "data")))
    parser.add_argument("--datasets", nargs="+", default=None, choices=sorted(DATASETS),
                        help="default: mnist fashion_mnist (--small: mnist)")
    parser.add_argument("--small", action="store_true",
                        help="make small: the smoke study (a data subset, two seeds, one epoch, four levels, every "
                             "strategy) on MNIST, into runs/, its speed measured by the quick benchmark")
    parser.add_argument("--study", default="report", choices=list(STUDIES),
                        help="report: the study make report runs on a 2-core machine; extended: the papers' "
                             "settings everywhere, for more cores or a cluster (README, Cost)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="worker processes that train (default: as many as the cores hold jobs of --threads)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of every training job (default: the notebooks', 1); part of every "
                             "record, since it changes the last bits")
    parser.add_argument("--scheduler", default=None,
                        help="address of a Dask scheduler whose workers train instead (default: "
                             "$DASK_SCHEDULER_ADDRESS, else local workers); they must share the artefacts folder")
    parser.add_argument("--force", action="store_true",
                        help="run every notebook, also those whose inputs did not change since the last run")
    parser.add_argument("--plan", action="store_true",
                        help="run nothing: list the jobs the run would train, with their estimated CPU seconds "
                             "(from the last run's cost_jobs.csv), and write them to <artefacts>/plan.csv")
    args = parser.parse_args(argv)
    where = SMALL if args.small else Layout()
    layout = Layout(*(getattr(args, field) or getattr(where, field) for field in ("reports", "results", "figures",
                                                                                  "artefacts")), args.data_dir)
    datasets = args.datasets or (["mnist"] if args.small else ["mnist", "fashion_mnist"])
    overrides = SMOKE if args.small else None
    if args.plan:
        given = studied(layout, datasets, args.study, overrides)
        estimated = plan.estimate(plan.planned_jobs(given, {d: plan.TRAIN_IMAGES for d in datasets}),
                                  layout.results / plan.JOBS_COST_FILE)
        io.write_csv(estimated, layout.artefacts / "plan.csv")
        print(plan.summary(estimated, _busy_cores(layout.results / plan.COST_FILE)))
        print(plan.last_run(layout.results / plan.COST_FILE))
        print(f"wrote {layout.artefacts / 'plan.csv'}")
        return
    for page in run(layout, datasets, overrides, quick_benchmark=args.small, force=args.force,
                    jobs=args.jobs, scheduler=args.scheduler, threads=args.threads, study=args.study):
        print(f"wrote {page}")


if __name__ == "__main__":
    main()
