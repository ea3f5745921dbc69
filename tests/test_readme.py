"""The README works as written: its commands run, in order, in a fresh copy of the repository
(the tracked files alone, as a clone has them), with the suite's .venv and only the README's
environment variables. The small run they start is make report's pipeline on the smoke study:
every page, results file and figure it writes, and its refusals of bad input before anything is
written are checked on it, and it never touches the committed report. It is made once per test
run, by whichever worker asks first (tests/test_small_run_again.py runs it again, in a copy)."""

import ast
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import filelock
import nbformat
import pandas as pd
import papermill
import pytest

from helpers import checkpoints, io, kernel, parameters, recovery, report, study
from helpers.pipeline import NOTEBOOKS, SMALL, SMOKE, SOURCE_DIR, Layout

from .conftest import DATA_DIR, ROOT, shared_folder

NOT_RUN = ("make report", "make test", "make lab")
"""README commands the test leaves out: the full run (two hours), the suite itself, a server."""

NOISE = ("without encryption", "Alternative text is missing", "Traceback", "Error")


def readme_commands() -> list[str]:
    """The lines of the README's ``bash`` blocks that a user runs, in order, but :data:`NOT_RUN`."""
    blocks = re.findall(r"^```bash\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith(("#", *NOT_RUN))]


def fresh_copy(folder):
    """The files a clone of this working tree would hold (tracked, or new and not ignored),
    modification times kept (so that make finds .venv up to date), and the suite's .venv."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, folder / name)
    (folder / ".venv").symlink_to(ROOT / ".venv")
    assert not (folder / "data").exists() and not (folder / "artefacts").exists() and (folder / "runs").is_dir()
    return folder


def readme_environment(folder) -> dict[str, str]:
    """What a user's shell has, and the one variable the README asks for offline (MNIST_ARCHIVE).
    Without it the suite found MNIST in its data folder: the copy gets that folder, as a user
    who downloaded it. One OpenMP thread that waits asleep, as every process of the suite (tests/conftest.py)."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    if os.environ.get("MNIST_ARCHIVE"):
        env["MNIST_ARCHIVE"] = str(ROOT / os.environ["MNIST_ARCHIVE"])  # relative to the repository, as documented
    else:
        (folder / "data").symlink_to(DATA_DIR)
    return {**env, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def checksums(root, *folders):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted((root / folder).rglob("*")) if p.is_file()}


def make_small(folder) -> dict:
    """The README's first command, make small, run in a fresh copy in ``folder``, then that copy
    copied again for the tests that run it again (so they change nothing other tests read):
    the copies, the command, its environment, output and exit status."""
    cwd = fresh_copy(folder / "fresh-clone")
    env, command = readme_environment(cwd), readme_commands()[0]
    assert command.startswith("make small"), "the README's first command is make small"
    done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True)
    again = folder / "fresh-clone-again"
    if done.returncode == 0:
        # hard links, but for the job log: a run replaces every file it writes (a new inode) and
        # appends to that one
        shutil.copytree(cwd, again, symlinks=True, copy_function=lambda src, dst: (
            shutil.copy2 if src.endswith(".jsonl") else os.link)(src, dst))
    return {"cwd": str(cwd), "again": str(again), "command": command, "env": env,
            "output": done.stdout + done.stderr, "returncode": done.returncode}


@pytest.fixture(scope="session")
def small_made(tmp_path_factory):
    """make small's run (:func:`make_small`), made once per test run by whichever xdist worker
    asks first; the other waits for it, then reads it."""
    shared = shared_folder(tmp_path_factory)
    made = shared / "small-run.json"
    with filelock.FileLock(shared / "small-run.lock"):
        if not made.is_file():
            io.write_json(make_small(shared), made)
    made = io.read_json(made)
    if made["returncode"] != 0:
        pytest.fail(f"the README's `{made['command']}` failed on a fresh copy (exit {made['returncode']}):\n"
                    f"{made['output'][-3000:]}")
    return made


@pytest.fixture(scope="session")
def readme_run(small_made):
    """The README's commands run one after the other in a fresh copy, make small's run first;
    each one's output."""
    cwd, env, outputs = Path(small_made["cwd"]), small_made["env"], {small_made["command"]: small_made["output"]}
    for command in readme_commands()[1:]:
        done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True)
        outputs[command] = done.stdout + done.stderr
        if done.returncode != 0:
            pytest.fail(f"the README's `{command}` failed on a fresh copy (exit {done.returncode}):\n"
                        f"{outputs[command][-3000:]}")
    return cwd, outputs


def test_the_readmes_commands_run_as_written_on_a_fresh_copy(readme_run):
    cwd, outputs = readme_run
    commands = list(outputs)
    assert [c.split()[0] for c in commands if "papermill" in c or c.startswith("make")][:1] == ["make"]
    assert any(c.startswith("make small") for c in commands), "the small run is shown and run"
    assert any(" notebooks/03_weight_pruning.ipynb runs/out.ipynb " in c for c in commands), "a papermill example"
    assert any("nbconvert" in c and "runs/out.ipynb" in c for c in commands), "its HTML"
    for command, output in outputs.items():
        noise = [n for n in NOISE if n in output]
        assert not noise, f"`{command}` printed {noise}:\n{output[-2000:]}"
    assert (cwd / "runs" / "out.html").stat().st_size > 10_000
    help_text = next(out for c, out in outputs.items() if "--help-notebook" in c)
    assert "written: one row per seed" in help_text and "levels of ks" in help_text


def layout_in(cwd: Path) -> Layout:
    """Where make small writes in the fresh copy ``cwd`` (:data:`helpers.pipeline.SMALL`, absolute)."""
    return Layout(*(cwd / getattr(SMALL, f) for f in ("reports", "results", "figures", "artefacts")), cwd / "data")


@pytest.fixture(scope="session")
def small_run(small_made):
    """Where make small wrote in the fresh copy, and the pages it said it wrote."""
    cwd = Path(small_made["cwd"])
    return layout_in(cwd), [cwd / line.removeprefix("wrote ") for line in small_made["output"].splitlines()
                            if line.startswith("wrote ")]


def test_the_small_run_leaves_the_committed_report_alone_and_warns_of_nothing(readme_run, small_run):
    cwd, _ = readme_run
    layout, pages = small_run
    assert all(page.is_file() for page in pages) and (layout.reports / "index.html").is_file()
    assert checksums(cwd, "reports", "results", "figures") == checksums(ROOT, "reports", "results", "figures")
    results = io.read_csv(layout.results / "pruning.csv")
    gradual, finetune = (results[(results.strategy == s) & (results.k == 90)] for s in ("gradual", "finetune"))
    assert not gradual.accuracy.equals(finetune.accuracy), "gradual pruning is not fine-tuning under another name"
    for name in NOTEBOOKS:
        book = (layout.reports / "mnist" / f"{name}.ipynb").read_text()
        assert "DegenerateScheduleWarning" not in book and "Warning" not in book, name


def test_the_small_run_writes_every_report_page(small_run):
    layout, pages = small_run
    assert pages == [layout.reports / "mnist" / f"{n}.html" for n in NOTEBOOKS]
    for name in NOTEBOOKS:
        book = nbformat.read(layout.reports / "mnist" / f"{name}.ipynb", as_version=4)
        errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert not errors
        page = (layout.reports / "mnist" / f"{name}.html").read_text()
        assert "from helpers import" not in page, "HTML is rendered without code"
    index = (layout.reports / "index.html").read_text()
    assert all(f'href="mnist/{n}.html"' in index for n in NOTEBOOKS)
    assert 'class="answer"' in index and "The dense network reaches" in index
    assert "1/10 of the weights" in index and "data:image/png;base64," in index
    again = report.index_html(layout.reports, layout.results, layout.figures, ["mnist"])
    assert again == index, "the same results give the same landing page, table ids included"


def test_a_notebooks_cpu_time_holds_its_workers(small_run):
    """cost.csv's CPU seconds of a notebook that trained are its kernel's and its workers', so at
    least what its jobs logged, though the kernel stops while the next notebook runs."""
    layout, _ = small_run
    cost = pd.read_csv(layout.results / "cost.csv").set_index("notebook").cpu_seconds
    jobs = pd.read_csv(layout.results / "cost_jobs.csv")
    trained = {"02_training": jobs[jobs.kind == "dense"], "03_weight_pruning": jobs[jobs.method == "weight"],
               "04_unit_pruning": jobs[jobs.method == "unit"]}
    for name, rows in trained.items():
        assert cost[name] >= rows.cpu_seconds.sum() > 0, name
    assert (cost > 0).all()


def test_the_small_run_writes_the_results_contract(small_run):
    layout, _ = small_run
    results = pd.read_csv(layout.results / "pruning.csv")
    assert {"dataset", "seed", "method", "strategy", "ranking", "k", "accuracy", "loss", "sparsity",
            "nonzero_weights", "remaining_weights"} <= set(results)
    ks, seeds = SMOKE["03_weight_pruning"]["ks"], SMOKE["03_weight_pruning"]["seeds"]
    expected = {("mnist", s, m, "oneshot", "layer", float(k)) for s in seeds for m in ("weight", "unit") for k in ks}
    expected |= {("mnist", s, m, st, "layer", float(k)) for s in seeds for m in ("weight", "unit")
                 for st in ("finetune", "gradual") for k in ks if k > 0}
    # the scratch control gets the dense recipe (one epoch in the smoke run) at control_ks
    expected |= {("mnist", s, m, "scratch", "layer", float(k)) for s in seeds for m in ("weight", "unit")
                 for k in SMOKE[f"0{3 if m == 'weight' else 4}_{m}_pruning"]["control_ks"]}
    # the other rankings, weight pruning only: one-shot and fine-tuned at ranking_ks (the default levels)
    ranking_ks = [90.0, 99.0, 99.7]
    expected |= {("mnist", s, "weight", st, r, k) for s in seeds for r in ("global", "lamp", "random")
                 for st, levels in (("oneshot", [0.0, *ranking_ks]), ("finetune", ranking_ks)) for k in levels}
    # the lottery ticket (weight pruning, in the report's study): its rounds up to the highest control
    # level, the dense recipe (one epoch in the smoke run) each; its control at the round that reaches
    # each control level
    path = recovery.iterative_path(90, 0.4)
    rounds = results[results.strategy == "ticket"]
    assert sorted(rounds[["method", "k", "epochs", "seed"]].apply(tuple, axis=1)) == sorted(
        ("weight", k, r + 1, s) for r, k in enumerate(path) for s in seeds)
    assert "lrr" not in set(results.strategy)
    reinit = results[results.strategy == "reinit"]
    assert sorted(reinit[["method", "k", "seed"]].apply(tuple, axis=1)) == sorted(("weight", 90.0, s) for s in seeds)
    # Scratch-B: the dense recipe's compute, twice its one epoch here (on weight pruning in the
    # report's study: a unit-pruned shape reaches the cap at every level, Scratch-E trained longer)
    scratch_b = results[results.strategy == "scratch_b"]
    assert sorted(scratch_b[["method", "k", "epochs", "seed"]].apply(tuple, axis=1)) == sorted(
        ("weight", 90.0, 2, s) for s in seeds)
    others = results[~results.strategy.isin(["lrr", "ticket", "reinit", "scratch_b"])]
    keys = others[others.epochs <= 1][["dataset", "seed", "method", "strategy", "ranking", "k"]].apply(tuple, axis=1)
    assert sorted(keys) == sorted(expected)
    long = others[(others.epochs == SMOKE["03_weight_pruning"]["target_epochs"]) & ~others.strategy.isin(["scratch"])]
    assert sorted(long[["method", "k", "strategy", "seed"]].apply(tuple, axis=1)) == sorted(
        (m, float(k), st, s) for m, k in (("weight", 99), ("unit", 90)) for st in ("finetune", "gradual") for s in seeds)
    # the longest budget: at each target level, one strategy (validation's first), every seed
    longest = others[others.epochs == SMOKE["03_weight_pruning"]["longest_epochs"]]
    for method, k in (("weight", 99.0), ("unit", 90.0)):
        ran = longest[longest.method == method]
        assert ran.strategy.nunique() == 1 and set(ran.k) == {k} and sorted(ran.seed) == seeds
        tuned = pd.read_csv(layout.results / "mnist" / f"{method}_tuning.csv")
        tuned = tuned[tuned.epochs == SMOKE["03_weight_pruning"]["longest_epochs"]]
        assert set(tuned.strategy) == set(ran.strategy) and set(tuned.lr) >= set(SMOKE["03_weight_pruning"]["tune_lrs"])
        assert ran.lr.isin(tuned.lr).all(), "the longest budget's learning rate was chosen at its length"
    assert results.accuracy.between(0, 1).all()
    dense = results[results.k == 0]
    assert dense.sparsity.eq(0).all() and dense.nonzero_weights.eq(2_386_000).all()
    at90 = results[(results.k == 90) & (results.ranking == "layer")]
    assert at90.sparsity.sub(0.9).abs().max() < 1e-6, "every strategy reaches the target sparsity exactly"
    assert (at90.sparsity_fc5 == 0).all()
    globally = results[(results.k == 90) & (results.ranking == "global")]
    assert globally.sparsity.sub(0.9).abs().max() < 1e-6
    assert globally[[f"sparsity_fc{i}" for i in range(1, 5)]].std(axis=1).gt(0).all()
    for method in ("weight", "unit"):
        sens = pd.read_csv(layout.results / "mnist" / f"{method}_sensitivity.csv")
        assert set(sens.layer) == {"fc1", "fc2", "fc3", "fc4", "fc5"} and len(sens) == 5 * len(ks)
    assert set(pd.read_csv(layout.results / "targets.csv").method) >= {"dense", "weight", "unit"}
    efficiency = pd.read_csv(layout.results / "efficiency.csv")
    assert set(efficiency.method) == {"weight", "unit"} and (efficiency.dataset == "mnist").all()
    assert (efficiency.max_abs_diff < 1e-4).all(), "compact models predict what the masked ones do"

    per_dataset = pd.read_csv(layout.results / "mnist" / "pruning.csv")
    pd.testing.assert_frame_equal(per_dataset, results)
    history = pd.read_csv(layout.results / "training.csv")
    assert list(history.seed) == seeds and list(history.epoch) == [1, 1]
    assert {"train_loss", "test_accuracy"} <= set(history)
    assert set(pd.read_csv(layout.results / "levels.csv").method) == {"weight", "unit"}
    findings = pd.read_csv(layout.results / "findings.csv")
    assert list(findings.budget_kind) == ["weights"] * 4 + ["latency"] * 3
    assert findings.dropna(subset=["best"]).method.isin(["weight", "unit"]).all()
    for method in ("weight", "unit"):
        tuning = pd.read_csv(layout.results / "mnist" / f"{method}_tuning.csv")
        controls = {"scratch", "scratch_b"} if method == "weight" else {"scratch"}
        assert set(tuning.strategy) == {"oneshot", "finetune", "gradual", *controls} and tuning.val_accuracy.between(0, 1).all()
        chosen = results[(results.method == method) & results.strategy.isin(["finetune", "gradual", "scratch"])]
        assert chosen.lr.isin(tuning.lr).all(), "retraining uses a learning rate tried (the grid, or beyond its edge)"
        assert set(tuning.lr) >= set(SMOKE["03_weight_pruning"]["tune_lrs"])
    record = json.loads((layout.results / "mnist" / "weight_pruning.provenance.json").read_text())
    assert record["parameters"]["seeds"] == seeds and list(record["dense_fingerprints"]) == ["0", "1"]
    assert record["versions"]["torch"] and record["machine"]["cpu"]
    summary = json.loads((layout.results / "mnist" / "data_summary.json").read_text())
    assert summary["splits"]["train"]["images"] == 60_000
    for figure in ("class_balance", "samples", "pixel_histogram", "learning_curves", "weight_accuracy",
                   "unit_accuracy", "weight_magnitudes", "unit_norms", "comparison", "weight_sensitivity",
                   "unit_sensitivity", "weight_shift", "unit_shift", "weight_rankings", "speedup",
                   "equal_cost"):
        assert (layout.figures / "mnist" / f"{figure}.png").stat().st_size > 1000, figure


def test_the_small_runs_pages_open_whole_in_a_browser(small_run, tmp_path_factory):
    from .test_browser import CHROMEDRIVER, CHROMIUM, check_page, pages, start_chromium

    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    driver = start_chromium(tmp_path_factory.mktemp("chromium"))
    try:
        layout, _ = small_run
        found = {page.name: check_page(driver, page) for page in pages(layout.reports)}
    finally:
        driver.quit()
    assert len(found) == 6 and {page: problems for page, problems in found.items() if problems} == {}


def test_files_get_the_permissions_of_the_umask(readme_run, tmp_path):
    cwd, _ = readme_run
    for path in (cwd / "runs" / "results" / "pruning.csv", cwd / "runs" / "artefacts" / "mnist" / "dense-seed0.pt"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~io.current_umask(), path
    for umask, mode in ((0o077, 0o600), (0o022, 0o644)):
        previous = os.umask(umask)
        try:
            io.write_json({"a": 1}, tmp_path / f"{mode:o}.json")
        finally:
            os.umask(previous)
        assert stat.S_IMODE((tmp_path / f"{mode:o}.json").stat().st_mode) == mode


def run(name, cwd, **params):
    """Notebook ``name`` run by papermill in ``cwd`` with ``params`` (and the suite's data)."""
    if "data_dir" in parameters.declared(name):
        params = {"data_dir": str(DATA_DIR), **params}
    return papermill.execute_notebook(SOURCE_DIR / f"{name}.ipynb", cwd / f"{name}.ipynb", cwd=str(cwd),
                                      parameters=params, progress_bar=False)


def test_a_refused_comparison_writes_nothing(readme_run, tmp_path):
    """Results of another run (here: a unit table whose record names other dense weights) stop
    notebook 05 in its first cell, before any file is written."""
    cwd, _ = readme_run
    results = cwd / "runs" / "results" / "mnist"
    frame, record = io.read_results(results / "unit_pruning.csv")
    io.write_csv(frame, tmp_path / "unit_pruning.csv", {**record, "dense_fingerprints": {"0": "f" * 16}})
    out = tmp_path / "out"
    with pytest.raises(papermill.PapermillExecutionError, match="results from different runs"):
        run("05_comparison", cwd, weight_results_path=str(results / "weight_pruning.csv"),
            unit_results_path=str(tmp_path / "unit_pruning.csv"), quick_benchmark=True,
            **{key: str(out / f"{key}.x") for key in ("pruning_results_path", "findings_path", "targets_path",
                                                       "efficiency_path", "machine_path")},
            figures_dir=str(out / "figures"))
    assert not out.exists()
    # the notebook names the one that writes a missing input (05 passes it to io.read_results)
    with pytest.raises(FileNotFoundError, match=r"nothing.csv does not exist: run 04_unit_pruning first, with the "
                                                r"path it writes set to this one"):
        io.read_results(tmp_path / "nothing.csv", "04_unit_pruning")
    sources = "".join("".join(c["source"]) for c in io.read_json(SOURCE_DIR / "05_comparison.ipynb")["cells"])
    assert 'io.read_results(unit_results_path, "04_unit_pruning")' in sources


def test_recorded_data_fill_what_is_not_given(tmp_path):
    checkpoints.write_dense_record(tmp_path, "fashion_mnist", 2000, None, {"0": "a" * 16, "2": "b" * 16},
                                   train_images=1800, validation_size=200)
    params = {"checkpoint_dir": str(tmp_path), "dataset": None, "train_size": None, "test_size": None,
              "seeds": None, "ks": [0.0], "validation_size": None}
    assert checkpoints.with_recorded_data(params, "04_unit_pruning") == {
        **params, "dataset": "fashion_mnist", "train_size": 2000, "validation_size": 200, "seeds": [0, 2]}
    with pytest.raises(ValueError, match=r"dataset: checkpoints 'fashion_mnist', asked 'mnist'; test_size: "
                                         r"checkpoints None, asked 300; seeds: checkpoints \[0, 2\], asked \[0, 1\]"):
        checkpoints.with_recorded_data({**params, "dataset": "mnist", "test_size": 300, "seeds": [0, 1]}, "x")
    with pytest.raises(ValueError, match=r"validation_size: checkpoints 200, asked 500"):
        checkpoints.with_recorded_data({**params, "validation_size": 500}, "x")
    with pytest.raises(FileNotFoundError, match="run 02_training with checkpoint_dir"):
        checkpoints.with_recorded_data({**params, "checkpoint_dir": str(tmp_path / "none")}, "x")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_papermill_sees_every_parameter_with_its_type_and_the_projects_kernel(name):
    seen = papermill.inspect_notebook(SOURCE_DIR / f"{name}.ipynb")
    declared = parameters.declared(name)
    assert set(seen) == set(declared)
    for param, info in seen.items():
        assert info["inferred_type_name"] == declared[param]["annotation"], param
        assert ast.literal_eval(info["default"]) == ast.literal_eval(declared[param]["default"]), param
        assert info["help"] == declared[param]["help"], param
    book = io.read_json(SOURCE_DIR / f"{name}.ipynb")
    assert book["metadata"]["kernelspec"]["name"] == kernel.KERNEL_NAME, "the kernel make registers"


def test_a_level_that_empties_a_layer_is_refused_before_anything_is_written(readme_run, tmp_path):
    cwd, _ = readme_run
    params = {n: ast.literal_eval(p["default"]) for n, p in parameters.declared("04_unit_pruning").items()}
    params.update(data_dir=str(DATA_DIR), checkpoint_dir=str(cwd / "runs" / "artefacts" / "mnist"), ks=[0, 99.9],
                  cache_dir=str(tmp_path / "cache"), results_path=str(tmp_path / "unit.csv"), validation_size=200,
                  target_ks=[])
    params = checkpoints.with_recorded_data(parameters.check(params, "04_unit_pruning"), "04_unit_pruning")
    with pytest.raises(ValueError, match="k = 99.9 % would remove every neuron of fc3, fc4"):
        study.run_method_study("04_unit_pruning", "unit", params)
    assert not any(tmp_path.iterdir())
