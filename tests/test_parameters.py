"""Notebook parameters: unknown names, wrong types and out-of-range values stop a run before it writes."""

import ast
import math

import papermill
import pytest

from helpers import parameters, pipeline
from helpers.pipeline import NOTEBOOKS, SMOKE, Layout

from .conftest import DATA_DIR


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_parameter_is_annotated_and_its_default_passes(name):
    declared = parameters.declared(name)
    assert declared, "each notebook declares parameters"
    assert all(p["annotation"] for p in declared.values()), "every parameter has a type to check against"
    parameters.check({n: ast.literal_eval(p["default"]) for n, p in declared.items()}, name)


@pytest.mark.parametrize("notebook, values, error, match", [
    ("02_training", {"epocs": 3}, ValueError, r"02_training: unknown parameter\(s\) 'epocs' \(did you mean 'epochs'\?\)"),
    ("03_weight_pruning", {"seeds": [0], "kss": [50]}, ValueError, "'kss' \\(did you mean 'ks'\\?\\); accepted: data_dir"),
    ("03_weight_pruning", {"ks": "[0, 50]"}, TypeError, r"parameter ks must be list\[float\], got '\[0, 50\]' \(str\).* -y"),
    ("03_weight_pruning", {"ks": [0, "50"]}, TypeError, r"list\[float\]"),
    ("03_weight_pruning", {"tune_lrs": ["1e-3", "8e-3"]}, TypeError,
     r"1e-3 is text to YAML, which wants a dot in an exponent: write 0.001 or 1.0e-3"),
    ("02_training", {"epochs": 2.5}, TypeError, "parameter epochs must be int, got 2.5"),
    ("02_training", {"epochs": True}, TypeError, "parameter epochs must be int, got True"),
    ("02_training", {"train_size": "all"}, TypeError, r"train_size must be Optional\[int\]"),
    ("02_training", {"epochs": 0}, ValueError, "parameter epochs: epochs must be an integer >= 1, got 0"),
    ("02_training", {"batch_size": -256}, ValueError, "batch_size must be an integer >= 1"),
    ("02_training", {"lr": math.nan}, ValueError, "lr must be a finite number > 0, got nan"),
    ("02_training", {"train_size": 0}, ValueError, "train_size must be an integer >= 1"),
    ("02_training", {"seeds": []}, ValueError, "non-empty list of integers >= 0"),
    ("02_training", {"seeds": [0, -1]}, ValueError, r"integers >= 0, got \[0, -1\]"),
    ("02_training", {"seeds": [1, 1]}, ValueError, "must not repeat"),
    ("02_training", {"dataset": "cifar10"}, ValueError, r"unknown dataset 'cifar10'; accepted: \['fashion_mnist', 'mnist'\]"),
    ("03_weight_pruning", {"ks": [0, 100]}, ValueError, r"k must be a percentage in \[0, 100\), got 100"),
    ("03_weight_pruning", {"ks": [-5]}, ValueError, r"\[0, 100\), got -5"),
    ("03_weight_pruning", {"ks": [math.nan]}, ValueError, r"\[0, 100\), got nan"),
    ("03_weight_pruning", {"ks": []}, ValueError, "at least one sparsity level"),
    ("03_weight_pruning", {"target_ks": [99, 100.0]}, ValueError, r"\[0, 100\), got 100.0"),
    ("04_unit_pruning", {"shift_k": 120}, ValueError, r"\[0, 100\), got 120"),
    ("04_unit_pruning", {"strategies": ["oneshot", "finetuning"]}, ValueError,
     r"unknown strategy \['finetuning'\].*\['oneshot', 'finetune', 'gradual', 'lrr', 'ticket'"),
    ("04_unit_pruning", {"recovery_epochs": 0}, ValueError, r"recovery_epochs must be an integer in \[1, 10\].*got 0"),
    ("03_weight_pruning", {"longest_epochs": 11}, ValueError, r"longest_epochs must be an integer in \[1, 10\].*got 11"),
    ("05_comparison", {"tolerance": 1.5}, ValueError, r"tolerance must be a fraction in \(0, 1\)"),
    ("06_summary", {}, ValueError, "unknown notebook '06_summary'"),
])
def test_bad_parameters_are_refused_by_name(notebook, values, error, match):
    with pytest.raises(error, match=match):
        parameters.check(values, notebook)


def test_unsorted_and_repeated_levels_are_accepted_and_normalised():
    checked = parameters.check({"ks": [90, 50, 90, 0], "target_ks": [90, 50], "seeds": [2, 0],
                                "strategies": ["finetune", "oneshot", "finetune"], "shift_k": 90}, "03_weight_pruning")
    assert checked == {"ks": [0.0, 50.0, 90.0], "target_ks": [50.0, 90.0], "seeds": [2, 0],
                       "strategies": ["finetune", "oneshot"], "shift_k": 90.0}
    assert parameters.check_ks([90, 50, 90, 0]) == [0.0, 50.0, 90.0]
    with pytest.raises(ValueError, match=r"\[0, 100\)"):
        parameters.check_ks([])
    with pytest.raises(ValueError, match=r"\[0, 100\)"):
        parameters.check_ks([50, 100])


@pytest.mark.parametrize("ks, normalised", [([90, 50, 90], [0.0, 50.0, 90.0]), ([50, 90], [0.0, 50.0, 90.0]),
                                             ([99.99], [0.0, 99.99]), ([0], [0.0])])
def test_the_dense_level_is_always_among_the_levels_a_pruning_notebook_sweeps(ks, normalised):
    """Every plot, table and conclusion of notebooks 03 and 04 measures against level 0."""
    for notebook in ("03_weight_pruning", "04_unit_pruning"):
        assert parameters.check({"ks": ks, "target_ks": []}, notebook)["ks"] == normalised


def test_target_levels_outside_the_sweep_are_refused_by_name():
    with pytest.raises(ValueError, match=r"03_weight_pruning: parameter target_ks: \[97.5, 99.0\] not among ks "
                                         r"\[0.0, 50.0, 90.0\]"):
        parameters.check({"ks": [0, 50, 90], "target_ks": [90, 97.5, 99]}, "03_weight_pruning")
    with pytest.raises(ValueError, match="parameter target_ks: \\[99.5\\] not among ks"):  # ks at its default
        parameters.check({"target_ks": [99.5]}, "04_unit_pruning")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_parameter_says_what_it_is_and_what_it_accepts(name):
    """What `papermill --help-notebook` shows: a description for every parameter, the accepted
    range of every checked one (the very phrase the check enforces), and read/written first
    for the files and folders the notebook exchanges with the others."""
    seen = papermill.inspect_notebook(parameters.SOURCE_DIR / f"{name}.ipynb")
    for param, info in seen.items():
        assert info["help"], f"{name}: {param} has no description"
        if param in parameters.VALIDATORS:
            assert parameters.VALIDATORS[param].text in info["help"], f"{name}: {param} does not state its range"
        if param.endswith(("_path", "_dir")) and param != "data_dir":
            assert info["help"].startswith(("read:", "written:", "cache:")), f"{name}: {param} is read or written"
    assert any(p["help"].startswith("written:") for p in parameters.declared(name).values()), "it writes something"


def test_an_output_that_cannot_be_written_is_refused_before_anything_runs(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match=r"03_weight_pruning: parameter results_path: '.*a-file/results/w.csv' "
                                         r"cannot be written \(.*is a file, not a folder"):
        parameters.prepare_outputs({"results_path": str(blocker / "results" / "w.csv")}, "03_weight_pruning")
    with pytest.raises(ValueError, match="parameter figures_dir: '/proc/figures' cannot be written"):
        parameters.prepare_outputs({"figures_dir": "/proc/figures"}, "01_data_exploration")
    outputs = parameters.prepare_outputs({"results_path": str(tmp_path / "new" / "w.csv"),
                                          "cache_dir": str(tmp_path / "cache")}, "03_weight_pruning")
    assert outputs == [tmp_path / "new" / "w.csv"], "the cache is checked, not taken back on failure"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"], "the check leaves no folder or file behind"


def test_namespace_check_ignores_ipython_and_imports_but_not_injected_names():
    import pandas as pd

    namespace = {"In": [], "Out": {}, "get_ipython": print, "_": None, "pd": pd, "Markdown": str,
                 "dataset": "mnist", "epochs": 3}
    assert parameters.check_namespace(namespace, "02_training") == {"dataset": "mnist", "epochs": 3}
    with pytest.raises(ValueError, match="'epoch' \\(did you mean 'epochs'\\?\\)"):
        parameters.check_namespace({**namespace, "epoch": 5}, "02_training")


def test_pipeline_refuses_a_typo_before_running_anything(tmp_path):
    layout = Layout(tmp_path / "reports", tmp_path / "results", tmp_path / "figures", tmp_path / "artefacts", DATA_DIR)
    with pytest.raises(ValueError, match="05_comparison: unknown parameter\\(s\\) 'tolerence'"):
        pipeline.run(layout, ["mnist"], {**SMOKE, "05_comparison": {"tolerence": 0.02}})
    with pytest.raises(ValueError, match="unknown dataset 'emnist'"):
        pipeline.run(layout, ["mnist", "emnist"], SMOKE)
    assert not any(tmp_path.iterdir()), "nothing is written"
    (tmp_path / "results").write_text("a file where the results folder should be")
    with pytest.raises(ValueError, match=r"01_data_exploration: parameter summary_path: '.*results/mnist/"
                                         r"data_summary.json' cannot be written"):
        pipeline.run(layout, ["mnist"], SMOKE)
    assert [p.name for p in tmp_path.iterdir()] == ["results"], "refused before the first notebook"


def test_papermill_run_with_a_typo_stops_in_the_notebook_and_writes_nothing(tmp_path):
    """Run directly with papermill, bypassing the pipeline: the notebook's first cell refuses the name."""
    summary = tmp_path / "summary.json"
    with pytest.raises(papermill.PapermillExecutionError, match="unknown parameter\\(s\\) 'figure_dir'"):
        papermill.execute_notebook(parameters.SOURCE_DIR / "01_data_exploration.ipynb", tmp_path / "out.ipynb",
                                   parameters={"data_dir": str(DATA_DIR), "figure_dir": str(tmp_path),
                                               "summary_path": str(summary)},
                                   progress_bar=False)
    assert not summary.exists() and not any(tmp_path.glob("*.png"))


def test_a_notebook_that_fails_after_its_check_takes_back_the_files_it_wrote(tmp_path):
    """What check_namespace arms in a kernel: a later cell's failure removes this run's outputs
    (results and their provenance records), not the caches, and says so."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    results, cache = tmp_path / "results" / "summary.json", tmp_path / "cache" / "entry.json"
    shell.user_ns.update(figures_dir=str(tmp_path / "figures"), summary_path=str(results),
                         data_dir="data", archive=None)
    try:
        assert shell.run_cell('from helpers import io, parameters\n'
                              '_params = parameters.check_namespace(globals(), "01_data_exploration")').success
        assert shell.run_cell(f"io.write_json({{'a': 1}}, {str(results)!r}); io.write_json({{}}, {str(cache)!r})\n"
                              f"io.write_csv(__import__('pandas').DataFrame({{'x': [1]}}), "
                              f"{str(tmp_path / 'figures' / 'f.csv')!r}, {{'run': 1}})").success
        assert results.is_file() and (tmp_path / "figures" / "f.provenance.json").is_file()
        assert shell.run_cell("io.write_json({'fine': True}, " + repr(str(results)) + ")").success
        assert results.is_file(), "a cell that succeeds takes nothing back"
        assert not shell.run_cell("1 / 0").success
        assert not results.exists() and not any((tmp_path / "figures").iterdir())
        assert cache.is_file(), "what lies outside the notebook's outputs stays"
        shell.user_ns["summary_path"] = str(cache / "summary.json")  # a file where a folder should be
        refused = shell.run_cell('parameters.check_namespace(globals(), "01_data_exploration")')
        assert "parameter summary_path:" in str(refused.error_in_exec) and "cannot be written" in str(
            refused.error_in_exec)
    finally:
        for callback in list(shell.events.callbacks["post_run_cell"]):
            shell.events.unregister("post_run_cell", callback)
        InteractiveShell.clear_instance()
