"""The README works as written: its commands run, in order, in a fresh copy of the repository
(the tracked files alone, as a clone has them), with the suite's .venv and only the README's
environment variables; the notebooks they run chain by themselves through their default paths,
never touch the committed report, and refuse bad input before writing anything."""

import ast
import hashlib
import os
import re
import shutil
import stat
import subprocess

import papermill
import pytest

from helpers import checkpoints, io, kernel, parameters, study
from helpers.pipeline import NOTEBOOKS, SOURCE_DIR

from .conftest import DATA_DIR, ROOT

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


# session scope: a worker that runs another module's tests between two of these would
# otherwise tear the run down and make it again (module fixtures end with their module's run)
@pytest.fixture(scope="session")
def readme_run(tmp_path_factory):
    """The README's commands run one after the other in a fresh copy; each one's output."""
    cwd = fresh_copy(tmp_path_factory.mktemp("fresh-clone"))
    env, outputs = readme_environment(cwd), {}
    for command in readme_commands():
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


def test_the_small_run_chains_through_the_defaults_and_leaves_the_committed_report_alone(readme_run):
    cwd, _ = readme_run
    written = sorted(str(p.relative_to(cwd / "runs")) for p in (cwd / "runs").rglob("*") if p.is_file())
    assert "models/dense_models.json" in written and "results/pruning.csv" in written
    assert "results/efficiency.csv" in written and "figures/comparison.png" in written
    assert {f"{name}.html" for name in NOTEBOOKS} <= set(written), "make small renders every notebook"
    assert checksums(cwd, "reports", "results", "figures") == checksums(ROOT, "reports", "results", "figures")
    results = io.read_csv(cwd / "runs" / "results" / "pruning.csv")
    # the iterative rounds, and the other rankings (at ranking_ks), have levels of their own
    swept = results[~results.strategy.isin(["lrr", "ticket"]) & (results.ranking == "layer")]
    assert sorted(set(swept.k)) == [0.0, 50.0, 90.0] and set(results.seed) == {0}
    assert set(results.strategy) == {"oneshot", "finetune", "gradual", "ticket", "reinit", "scratch", "scratch_b"}
    gradual, finetune = (results[(results.strategy == s) & (results.k == 90)] for s in ("gradual", "finetune"))
    assert not gradual.accuracy.equals(finetune.accuracy), "gradual pruning is not fine-tuning under another name"
    sensitivity = io.read_csv(cwd / "runs" / "results" / "unit_sensitivity.csv")
    assert len(sensitivity) == 5 * 3 and sorted(set(sensitivity.k)) == [0.0, 50.0, 90.0]
    for name in NOTEBOOKS:
        book = (cwd / "runs" / f"{name}.ipynb").read_text()
        assert "DegenerateScheduleWarning" not in book and "Warning" not in book, name


def test_files_get_the_permissions_of_the_umask(readme_run, tmp_path):
    cwd, _ = readme_run
    for path in (cwd / "runs" / "results" / "pruning.csv", cwd / "runs" / "models" / "dense-seed0.pt"):
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
    results = cwd / "runs" / "results"
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
    params.update(data_dir=str(DATA_DIR), checkpoint_dir=str(cwd / "runs" / "models"), ks=[0, 99.9],
                  cache_dir=str(tmp_path / "cache"), results_path=str(tmp_path / "unit.csv"), validation_size=200,
                  target_ks=[])
    params = checkpoints.with_recorded_data(parameters.check(params, "04_unit_pruning"), "04_unit_pruning")
    with pytest.raises(ValueError, match="k = 99.9 % would remove every neuron of fc3, fc4"):
        study.run_method_study("04_unit_pruning", "unit", params)
    assert not any(tmp_path.iterdir())
