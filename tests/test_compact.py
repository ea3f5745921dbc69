"""Compact forms of pruned networks, their costs, timing and the benchmark: same logits,
expected shapes and byte counts.

No timing is asserted here (machines are noisy); speed ratios are measured by
``python -m helpers.benchmark``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from helpers import benchmark, compact, cost, timing
from helpers.benchmark import COLUMNS
from helpers.model import MLP, linear_layers
from helpers.pruning import unit_prune, weight_prune

STUDY_DENSE_BYTES = 2_386_000 * 4


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread, as the benchmark uses: on a busy 2-core machine two OpenMP threads
    stall the many small sparse products; the caller's setting is restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def study() -> MLP:
    torch.manual_seed(0)
    return MLP().eval()


@pytest.fixture(scope="module")
def small() -> MLP:
    torch.manual_seed(1)
    return MLP(hidden=(40, 30, 20), in_features=24, n_classes=5).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(300, 784, generator=torch.Generator().manual_seed(2))


def assert_same_logits(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor) -> None:
    with torch.inference_mode():
        torch.testing.assert_close(b(x), a(x), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- compact_units


@pytest.mark.parametrize("k", [0, 50, 90, 97.5, 99])
def test_compacted_unit_pruned_network_gives_the_same_logits(study, images, k):
    pruned = unit_prune(study, k)
    shrunk = compact.compact_units(pruned)
    assert_same_logits(pruned, shrunk, images)
    assert_same_logits(pruned, shrunk, images[:1])


def test_study_network_unit_pruned_at_90_shrinks_to_784_100_100_50_20_10(study):
    shrunk = compact.compact_units(unit_prune(study, 90))
    assert shrunk.widths == (784, 100, 100, 50, 20, 10)
    assert [tuple(m.weight.shape) for m in (shrunk.fc1, shrunk.fc2, shrunk.fc5)] == [
        (100, 784), (100, 100), (10, 20)
    ]
    assert cost.nonzero_params(shrunk) == 784 * 100 + 100 * 100 + 100 * 50 + 50 * 20 + 20 * 10


def test_compaction_keeps_a_zero_neuron_where_a_layer_lost_every_neuron(small):
    pruned = unit_prune(small, 99.9)  # round(0.999 * n) = n: every hidden neuron removed
    assert all(int(torch.count_nonzero(m.weight)) == 0 for m in (pruned.fc1, pruned.fc2, pruned.fc3))
    shrunk = compact.compact_units(pruned)
    assert shrunk.widths == (24, 1, 1, 1, 5)
    x = torch.randn(7, 24)
    assert_same_logits(pruned, shrunk, x)
    assert torch.equal(shrunk(x), torch.zeros(7, 5))


def test_compaction_also_drops_neurons_nobody_reads(small):
    model = MLP(hidden=(40, 30, 20), in_features=24, n_classes=5)
    model.load_state_dict(small.state_dict())
    with torch.no_grad():
        model.fc2.weight[:, :7] = 0  # neurons 0..6 of fc1 feed nothing
    shrunk = compact.compact_units(model)
    assert shrunk.widths == (24, 33, 30, 20, 5)
    assert_same_logits(model, shrunk, torch.randn(9, 24))


def test_compaction_does_not_change_its_input(study):
    pruned = unit_prune(study, 50)
    before = {k: v.clone() for k, v in pruned.state_dict().items()}
    compact.compact_units(pruned)
    assert all(torch.equal(before[k], v) for k, v in pruned.state_dict().items())


# ----------------------------------------------------------------------------- to_sparse


@pytest.mark.parametrize("k", [0, 80, 90, 95, 99])
def test_sparse_network_gives_the_masked_dense_networks_logits(study, images, k):
    pruned = weight_prune(study, k)
    sparse = compact.to_sparse(pruned, chunk_size=128)  # 300 images: chunks of 128, 128 and 44
    assert_same_logits(pruned, sparse, images)
    assert_same_logits(pruned, sparse, images[:1])
    assert cost.nonzero_params(sparse) == cost.nonzero_params(pruned)


def test_sparse_layers_follow_the_density_threshold(study):
    sparse = compact.to_sparse(weight_prune(study, 90))
    assert sparse.formats == ("csr", "csr", "csr", "csr", "dense")  # fc5 is not pruned
    assert compact.to_sparse(weight_prune(study, 80)).formats == ("dense",) * 5  # density 0.2 > 0.15
    assert compact.to_sparse(weight_prune(study, 80), max_density=0.2).formats[:4] == ("csr",) * 4
    assert all(
        w.crow_indices().dtype == torch.int32 and w.col_indices().dtype == torch.int32
        for w in sparse.weights() if w.layout == torch.sparse_csr
    )


def test_every_layer_in_csr_still_gives_the_same_logits(small):
    pruned = weight_prune(small, 60, prune_last=True)
    sparse = compact.to_sparse(pruned, max_density=1.0, index_dtype=torch.int64)
    assert sparse.formats == ("csr",) * 4
    assert_same_logits(pruned, sparse, torch.randn(11, 24))


def test_saved_compact_forms_hold_every_stored_value(study, tmp_path):
    """The file whose size the benchmark reports holds the whole network, exactly."""
    sparse = compact.to_sparse(weight_prune(study, 97.5))
    blob = torch.load(compact.save_compact(sparse, tmp_path / "sparse.pt"), weights_only=True)
    assert blob["kind"] == "sparse_mlp" and len(blob["layers"]) == 5
    for layer, w in zip(blob["layers"], sparse.weights()):
        if w.layout == torch.sparse_csr:
            assert torch.equal(layer["values"], w.values())
            assert torch.equal(layer["col_indices"].long(), w.col_indices().long())
            assert layer["col_indices"].dtype == torch.int16
            assert torch.equal(layer["crow_indices"].long(), w.crow_indices().long())
        else:
            assert torch.equal(layer["weight"], w)
    shrunk = compact.compact_units(unit_prune(study, 75))
    blob = torch.load(compact.save_compact(shrunk, tmp_path / "shrunk.pt"), weights_only=True)
    assert blob["kind"] == "mlp" and tuple(blob["widths"]) == shrunk.widths
    assert all(torch.equal(blob["state_dict"][k], v) for k, v in shrunk.state_dict().items())


# ----------------------------------------------------------------------------- sizes


def test_dense_and_shrunk_networks_cost_four_bytes_per_weight(study):
    assert cost.memory_bytes(study) == STUDY_DENSE_BYTES
    shrunk = compact.compact_units(unit_prune(study, 90))
    assert cost.memory_bytes(shrunk) == 4 * 94_600
    assert cost.macs_per_image(shrunk, executed=True) == 94_600


def test_csr_bytes_are_values_column_indices_and_row_pointers(study):
    pruned = weight_prune(study, 99)
    sparse = compact.to_sparse(pruned)
    shapes = [(1000, 784), (1000, 1000), (500, 1000), (200, 500)]
    nnz = [round(0.01 * o * i) for o, i in shapes]
    # float32 values + int32 column indices per non-zero, int32 row pointers (rows + 1)
    expected = sum(4 * n + 4 * n + 4 * (o + 1) for n, (o, _) in zip(nnz, shapes)) + 4 * 200 * 10
    assert cost.memory_bytes(sparse) == expected
    assert cost.nonzero_params(sparse) == sum(nnz) + 2000
    assert cost.macs_per_image(sparse) == sum(nnz) + 2000
    assert cost.compression_ratio(pruned, sparse) == pytest.approx(2_386_000 / (sum(nnz) + 2000))
    sparse64 = compact.to_sparse(pruned, index_dtype=torch.int64)
    assert cost.memory_bytes(sparse64) == expected + sum(4 * n + 4 * (o + 1) for n, (o, _) in zip(nnz, shapes))


def test_disk_sizes_of_the_compact_forms(study):
    dense = cost.disk_bytes(study)
    assert STUDY_DENSE_BYTES <= dense <= STUDY_DENSE_BYTES * 1.01
    weight99 = cost.disk_bytes(compact.to_sparse(weight_prune(study, 99)))
    unit90 = cost.disk_bytes(compact.compact_units(unit_prune(study, 90)))
    assert weight99 <= 0.03 * dense
    assert unit90 <= 0.05 * dense
    assert unit90 >= 4 * 94_600  # the float32 weights themselves are all there


def test_side_by_side_timing_gives_one_time_per_round_and_paired_ratios(small):
    times = timing.time_side_by_side({"a": small, "b": small}, 3, repeats=4, warmup=1, in_features=24)
    assert [len(t) for t in times.values()] == [4, 4]
    assert all(t > 0 for ts in times.values() for t in ts)
    assert timing.paired_speedup([2.0, 9.0, 3.0], [1.0, 1.0, 3.0]) == 2.0


def test_training_macs_skip_the_first_layers_input_gradient():
    assert cost.training_macs_per_image((784, 1000, 10)) == 3 * 784_000 + 3 * 10_000 - 784_000


# ----------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: compact.to_sparse(m, max_density=1.5), "1.5"),
        (lambda m: compact.to_sparse(m, max_density=-0.1), "-0.1"),
        (lambda m: compact.to_sparse(m, chunk_size=0), "chunk_size.*0"),
        (lambda m: compact.to_sparse(m, index_dtype=torch.int16), "int16"),
        (lambda m: compact.SparseMLP([m.fc1.weight, m.fc1.weight]), "40 outputs.*24 inputs"),
        (lambda m: timing.time_side_by_side({"m": m}, 0), "batch_size.*0"),
        (lambda m: timing.time_side_by_side({"m": m}, 2, repeats=0), "repeats.*0"),
        (lambda m: timing.time_call(lambda: None, warmup=-1), "warmup.*-1"),
        (lambda m: timing.time_side_by_side({}, 4), "none"),
        (lambda m: timing.time_side_by_side({"m": m}, 4, min_seconds=-1.0), "min_seconds.*-1"),
        (lambda m: timing.paired_speedup([1.0], [1.0, 2.0]), "1 and 2"),
        (lambda m: timing.matmul_peak(size=0), "size.*0"),
        (lambda m: timing.training_throughput(n_images=0), "n_images.*0"),
        (lambda m: cost.training_macs_per_image((784,)), r"\[784\]"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_the_value(small, call, message):
    with pytest.raises(ValueError, match=message):
        call(small)


def test_a_model_that_is_not_an_mlp_is_refused():
    with pytest.raises(TypeError, match="Sequential"):
        compact.compact_units(torch.nn.Sequential(torch.nn.Linear(3, 2, bias=False)))
    with pytest.raises(TypeError, match="Linear"):
        cost.memory_bytes(torch.nn.Linear(3, 2))


def test_a_layer_with_a_bias_is_refused(small):
    model = MLP(hidden=(40, 30, 20), in_features=24, n_classes=5)
    model.fc2 = torch.nn.Linear(40, 30)
    with pytest.raises(ValueError, match="fc2 has a bias"):
        compact.compact_units(model)


# ----------------------------------------------------------------------------- the benchmark


def test_quick_benchmark_writes_the_expected_csv_and_json(tmp_path):
    out = tmp_path / "efficiency.csv"
    result = subprocess.run(
        [sys.executable, "-m", "helpers.benchmark", "--quick", "--ks", "50", "99",
         "--train-images", "512", "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(out)
    assert list(frame.columns) == list(COLUMNS)
    assert list(zip(frame["method"], frame["k"])) == [("weight", 50), ("weight", 99), ("unit", 50), ("unit", 99)]
    assert list(frame["format"]) == ["dense", "csr", "shrunk", "shrunk"]
    assert frame["threads"].eq(1).all()
    assert (frame["max_abs_diff"] <= 1e-5).all()
    speed = [c for c in COLUMNS if c.startswith(("latency", "throughput", "measured_speedup"))]
    assert (frame[speed] > 0).all().all()
    machine = pd.read_json(tmp_path / "efficiency_machine.json", typ="series")
    assert {"machine", "matmul_peak", "training", "training_bf16", "retraining", "summary"} <= set(machine.index)
    assert machine["training"]["fraction_of_peak"] > 0
    assert machine["training_bf16"]["precision"] == "bf16" and machine["training_bf16"]["speedup_over_fp32"] > 0
    unit = machine["retraining"]["unit k=90"]
    assert unit["widths_compact"] == [784, 100, 100, 50, 20, 10] and unit["speedup"] > 1
    assert machine["summary"]["unit_k90_retraining_speedup"]["target"] == ">= 10.0"


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--ks", "100"], "100"), (["--threads", "0"], "--threads.*0"), (["--max-density", "2"], "2.0")],
)
def test_benchmark_rejects_bad_arguments_before_measuring(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(["--quick", *flags, "--out", str(tmp_path / "e.csv")])
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "e.csv").exists()


def test_the_benchmarks_settings_are_checked_and_completed_without_its_command_line():
    quick = benchmark.Settings(quick=True).resolved()
    assert (quick.ks, quick.repeats, quick.train_images) == (benchmark.QUICK_KS, 2, 1024)
    full = benchmark.Settings(ks=(99, 50)).resolved()
    assert full.ks == (99.0, 50.0) and full.repeats == 9 and full.methods == ("weight", "unit")
    for bad, message in (({"ks": (100,)}, r"ks: k must be a percentage in \[0, 100\), got 100"),
                         ({"threads": 0}, "threads must be an integer >= 1, got 0"),
                         ({"methods": ("filter",)}, r"unknown method\(s\) \['filter'\]")):
        with pytest.raises(ValueError, match=message):
            benchmark.Settings(**bad).resolved()


# ----------------------------------------------------------------------------- remaining weights


def hand_built(*weights):
    """A bias-free MLP with the given (out, in) weights."""
    model = MLP(hidden=[w.shape[0] for w in weights[:-1]], in_features=weights[0].shape[1],
                n_classes=weights[-1].shape[0])
    with torch.no_grad():
        for (_, layer), w in zip(linear_layers(model), weights):
            layer.weight.copy_(w)
    return model


def test_a_dead_neuron_takes_its_row_and_the_next_layers_column():
    # 2 inputs -> 3 hidden -> 2 logits; hidden neuron 1 has no incoming weight
    model = hand_built(torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, 0.0]]),
                       torch.tensor([[1.0, 5.0, 0.0], [2.0, 6.0, 7.0]]))
    assert [m.tolist() for m in cost.live_neurons(model)] == [[True, False, True]]
    # non-zero weights: 3 in fc1, 5 in fc2; neuron 1's outgoing 5 and 6 are not stored
    assert cost.count_nonzero_weights(model) == 8 and cost.remaining_weights(model) == 3 + 3


def test_a_neuron_nobody_reads_is_dead_and_death_cascades():
    # 2 -> 2 -> 2 -> 1: hidden2 neuron 0 feeds nothing, so hidden1 neuron 1, which feeds only it, is dead too
    model = hand_built(torch.tensor([[1.0, 1.0], [1.0, 1.0]]),
                       torch.tensor([[0.0, 4.0], [2.0, 0.0]]),
                       torch.tensor([[0.0, 3.0]]))
    assert [m.tolist() for m in cost.live_neurons(model)] == [[True, False], [False, True]]
    assert cost.remaining_weights(model) == 2 + 1 + 1


def test_remaining_weights_of_the_pruned_study_network(study):
    # unit pruning at 90 %: the shrunk 784-100-100-50-20-10 network; weight pruning: every non-zero
    assert cost.remaining_weights(unit_prune(study, 90)) == 94_600
    assert cost.remaining_weights(weight_prune(study, 90)) == cost.count_nonzero_weights(weight_prune(study, 90)) == 240_400
    shrunk = compact.compact_units(unit_prune(study, 75))
    assert cost.remaining_weights(unit_prune(study, 75)) == cost.dense_params(shrunk)
