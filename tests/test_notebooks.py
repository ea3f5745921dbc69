"""The notebooks: clean sources, and a smoke run of all five through papermill."""

import json

import nbformat
import pandas as pd
import pytest

from helpers import pipeline, recovery, report
from helpers.pipeline import NOTEBOOKS, SMOKE, SOURCE_DIR, Layout

from .conftest import DATA_DIR


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_source_notebook_is_clean_and_thin(name):
    book = nbformat.read(SOURCE_DIR / f"{name}.ipynb", as_version=4)
    nbformat.validate(book)
    tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert set(book.metadata) <= {"kernelspec", "language_info"}, "no volatile notebook metadata"
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "sources hold no outputs"
            assert set(cell.metadata) <= {"tags"}
            for line in cell.source.splitlines():
                assert not line.lstrip().startswith(("def ", "class ", "lambda")), "functions live in helpers"


pytestmark = pytest.mark.xdist_group("pipeline")  # one worker runs the pipeline and the tests that read it


# session scope: a worker that runs another module's tests between two of these would
# otherwise tear the run down and make it again (module fixtures end with their module's run)
@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    layout = Layout(root / "reports", root / "results", root / "figures", root / "artefacts", DATA_DIR)
    pages = pipeline.run(layout, ["mnist"], SMOKE, quick_benchmark=True)
    return layout, pages


def test_smoke_run_writes_every_report_page(smoke_run):
    layout, pages = smoke_run
    assert [p.name for p in pages] == [f"{n}.html" for n in NOTEBOOKS]
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


def test_a_notebooks_cpu_time_holds_its_workers(smoke_run):
    """cost.csv's CPU seconds of a notebook that trained are its kernel's and its workers', so at
    least what its jobs logged, though the kernel stops while the next notebook runs."""
    layout, _ = smoke_run
    cost = pd.read_csv(layout.results / "cost.csv").set_index("notebook").cpu_seconds
    jobs = pd.read_csv(layout.results / "cost_jobs.csv")
    trained = {"02_training": jobs[jobs.kind == "dense"], "03_weight_pruning": jobs[jobs.method == "weight"],
               "04_unit_pruning": jobs[jobs.method == "unit"]}
    for name, rows in trained.items():
        assert cost[name] >= rows.cpu_seconds.sum() > 0, name
    assert (cost > 0).all()


def test_smoke_run_writes_the_results_contract(smoke_run):
    layout, _ = smoke_run
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


def test_a_cached_rerun_changes_no_report_file(smoke_run):
    """Run again over the same artefacts: every notebook, page and results file is unchanged,
    timings included (they come from the cached models and benchmark)."""
    layout, _ = smoke_run
    first = pd.read_csv(layout.results / "cost.csv")
    assert list(first.notebook) == list(NOTEBOOKS) and not first.set_index("notebook").cached["02_training"]
    files = [p for d in (layout.reports, layout.results) for p in sorted(d.rglob("*"))
             if p.is_file() and p.name not in ("cost.csv", "index.html")]  # wall times, and the page quoting them
    before = {p: p.read_bytes() for p in files}
    pipeline.run(layout, ["mnist"], SMOKE, quick_benchmark=True, force=True)  # every notebook runs again
    changed = [str(p.relative_to(layout.reports.parent)) for p in files if p.read_bytes() != before[p]]
    assert not changed
    assert pd.read_csv(layout.results / "cost.csv").cached.all(), "the rerun trained, evaluated and measured nothing"


def test_a_rerun_with_nothing_changed_runs_no_notebook_and_a_deleted_output_runs_its_notebook(smoke_run, monkeypatch):
    layout, _ = smoke_run
    ran = []
    execute = pipeline.execute
    monkeypatch.setattr(pipeline, "execute", lambda name, *a, **k: (ran.append(name), execute(name, *a, **k))[1])
    pipeline.run(layout, ["mnist"], SMOKE, quick_benchmark=True)
    assert ran == [], "every notebook is up to date"
    (layout.results / "mnist" / "unit_tuning.csv").unlink()  # written by 04_unit_pruning
    pipeline.run(layout, ["mnist"], SMOKE, quick_benchmark=True)
    assert ran == ["04_unit_pruning"], "only the notebook whose output is gone, and none after it: its rerun is identical"


def test_the_smoke_runs_pages_open_whole_in_a_browser(smoke_run, tmp_path_factory):
    from .test_browser import CHROMEDRIVER, CHROMIUM, check_page, pages, start_chromium

    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    driver = start_chromium(tmp_path_factory.mktemp("chromium"))
    try:
        layout, _ = smoke_run
        found = {page.name: check_page(driver, page) for page in pages(layout.reports)}
    finally:
        driver.quit()
    assert len(found) == 6 and {page: problems for page, problems in found.items() if problems} == {}


def test_an_executed_notebook_is_reused_only_while_its_record_holds(tmp_path):
    executed, record, out = tmp_path / "n.ipynb", tmp_path / "n.json", tmp_path / "out.csv"
    runs = []

    def execute_it():
        runs.append(1)
        executed.write_text(f"run {len(runs)}")
        out.write_text("x")
    params = {"results_path": "out.csv"}

    def current(key):  # what the progress line expects, before the notebook runs
        return pipeline.up_to_date(params, executed, record, key, tmp_path)
    assert not current("key")
    assert pipeline.executed_notebook(params, executed, record, "key", tmp_path, execute_it) is False
    assert current("key") and not current("other")
    assert pipeline.executed_notebook(params, executed, record, "key", tmp_path, execute_it) is True
    assert pipeline.executed_notebook(params, executed, record, "other", tmp_path, execute_it) is False
    record.write_text("{damaged")
    assert not current("other")
    assert pipeline.executed_notebook(params, executed, record, "other", tmp_path, execute_it) is False
    executed.write_text("edited by hand")
    assert not current("other")
    assert pipeline.executed_notebook(params, executed, record, "other", tmp_path, execute_it) is False
    out.unlink()
    assert not current("other")
    assert pipeline.executed_notebook(params, executed, record, "other", tmp_path, execute_it) is False
    assert pipeline.executed_notebook(params, executed, record, "other", tmp_path, execute_it, force=True) is False
    assert len(runs) == 6
