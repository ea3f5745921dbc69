"""Progress of a notebook's loops, reported to the pipeline through a file."""

import json
import math

from helpers import progress


def test_a_tracked_loop_reports_how_far_it_is(tmp_path, monkeypatch):
    path = tmp_path / "progress.json"
    monkeypatch.setenv(progress.ENVIRONMENT, str(path))
    seen = []
    for item in progress.track([10, 20, 30], "weight pruning, oneshot"):
        seen.append((item, json.loads(path.read_text())))
    assert [item for item, _ in seen] == [10, 20, 30]
    assert seen[0][1] == {"loops": [{"description": "weight pruning, oneshot", "done": 0, "total": 3}]}
    assert progress.read(path) == "weight pruning, oneshot 3/3"
    assert not list(tmp_path.glob(".*.tmp")), "written atomically, no temporary file left"


def test_without_a_pipeline_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(progress.ENVIRONMENT, raising=False)
    monkeypatch.chdir(tmp_path)
    assert list(progress.track(["a"], "loop")) == ["a"]
    assert list(tmp_path.iterdir()) == []
    assert progress.read(tmp_path / "missing.json") == ""


def test_a_loop_inside_a_tracked_loop_reports_after_it(tmp_path, monkeypatch):
    path = tmp_path / "progress.json"
    monkeypatch.setenv(progress.ENVIRONMENT, str(path))
    seen = []
    for _ in progress.track(["k=50", "k=90"], "weight pruning, finetune"):
        for _ in progress.track(range(3), "epochs"):
            seen.append(progress.read(path))
    assert seen[0] == "weight pruning, finetune 0/2 · epochs 0/3"
    assert seen[3] == "weight pruning, finetune 1/2 · epochs 0/3"
    assert progress.read(path) == "weight pruning, finetune 2/2", "a finished inner loop leaves the report"


def test_the_time_left_trusts_the_running_notebooks_jobs_then_what_was_expected_of_it():
    # this notebook was expected to take 1,000 s, the ones after it 600 s
    assert progress.time_left(1000.0, 100.0, None, 600.0) == 900.0 + 600.0, "counted down from what was expected"
    assert progress.time_left(1000.0, 100.0, 54.0, 600.0) == 54.0 + 600.0, "the jobs' own estimate, when they give one"
    assert progress.time_left(1000.0, 1200.0, None, 600.0) == 600.0, "never below zero for the running one"
    assert math.isnan(progress.time_left(math.nan, 5.0, None, math.nan)), "nothing expected: nothing to say"
