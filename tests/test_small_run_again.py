"""make small's run, run again: forced, every notebook gives the same files; with nothing changed,
no notebook runs; a deleted output runs its notebook alone.

The run is the one the README's commands make (tests/test_readme.py), made once per test run;
these tests run it again in a copy of it, so they change nothing the README's tests read, and
run beside them on the other worker.
"""

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from helpers import pipeline
from helpers.pipeline import NOTEBOOKS, SMALL, SMOKE

from .test_readme import layout_in, small_made  # noqa: F401 (small_made: a fixture)


@pytest.fixture(scope="session")
def small_run_copy(small_made):  # noqa: F811 (the fixture imported above)
    """Where make small wrote, in the copy of its fresh copy kept for these tests."""
    return layout_in(Path(small_made["again"]))


def run_small_again(layout, monkeypatch, **kwargs) -> list:
    """make small's run again, from the copy, with the parameters it was given (``kwargs``: of :func:`pipeline.run`)."""
    monkeypatch.chdir(layout.reports.parents[1])
    return pipeline.run(SMALL, ["mnist"], SMOKE, quick_benchmark=True, **kwargs)


def test_a_cached_rerun_changes_no_report_file(small_run_copy, small_made):  # noqa: F811
    """Run again over the same artefacts: every notebook, page and results file is unchanged,
    timings included (they come from the cached models and benchmark)."""
    layout = small_run_copy
    first = pd.read_csv(layout.results / "cost.csv")
    assert list(first.notebook) == list(NOTEBOOKS) and not first.set_index("notebook").cached["02_training"]
    files = [p for d in (layout.reports, layout.results) for p in sorted(d.rglob("*"))
             if p.is_file() and p.name not in ("cost.csv", "index.html")]  # wall times, and the page quoting them
    before = {p: p.read_bytes() for p in files}
    # every notebook runs again: make small's command, forced, in a process of its own, as a user's
    subprocess.run([".venv/bin/python", "-m", "helpers.pipeline", "--small", "--force"], cwd=layout.reports.parents[1],
                   env=small_made["env"], check=True, capture_output=True)
    changed = [str(p.relative_to(layout.reports.parent)) for p in files if p.read_bytes() != before[p]]
    assert not changed
    assert pd.read_csv(layout.results / "cost.csv").cached.all(), "the rerun trained, evaluated and measured nothing"


def test_a_rerun_with_nothing_changed_runs_no_notebook_and_a_deleted_output_runs_its_notebook(small_run_copy,
                                                                                                monkeypatch):
    layout = small_run_copy
    ran = []
    execute = pipeline.execute
    monkeypatch.setattr(pipeline, "execute", lambda name, *a, **k: (ran.append(name), execute(name, *a, **k))[1])
    run_small_again(layout, monkeypatch)
    assert ran == [], "every notebook is up to date"
    (layout.results / "mnist" / "unit_tuning.csv").unlink()  # written by 04_unit_pruning
    run_small_again(layout, monkeypatch)
    assert ran == ["04_unit_pruning"], "only the notebook whose output is gone, and none after it: its rerun is identical"
