"""Tests of helpers.recovery on a small MLP and synthetic data (a few seconds in all)."""

import copy

import pandas as pd
import pytest
import torch

from helpers import recovery, sensitivity as sensitivity_module
from helpers.model import linear_layers
from helpers.pruning import masks_of, method as pruning_method, n_to_prune, prune, prune_in_place, unit_prune, weight_mask, weight_prune
from helpers.recovery import cubic_schedule, finetune, gradual_prune
from helpers.sensitivity import layer_sensitivity as sensitivity
from helpers.training import evaluate, train

from .conftest import TRAIN

@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models train fastest on one thread, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class RecordingAdam(torch.optim.Adam):
    instances: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        RecordingAdam.instances.append(self)


@pytest.fixture
def adams(monkeypatch):
    RecordingAdam.instances = []
    monkeypatch.setattr(torch.optim, "Adam", RecordingAdam)
    return RecordingAdam.instances


# --- fine-tuning -----------------------------------------------------------------------


@pytest.mark.parametrize("prune, prune_last", [(weight_prune, False), (unit_prune, False), (weight_prune, True)])
def test_finetune_keeps_the_mask_fixed(data, dense, adams, prune, prune_last):
    pruned = prune(dense, 80, prune_last=prune_last)
    before = state(pruned)
    masks = masks_of(pruned, prune_last)
    tuned, history = finetune(pruned, data["train"], {"val": data["val"]}, epochs=2, seed=0,
                              prune_last=prune_last, **TRAIN)
    assert same_state(state(pruned), before)  # input unchanged
    assert len(history) == 2 and "val_accuracy" in history
    (adam,) = adams
    layers = dict(linear_layers(tuned))
    trained = dict(zip(layers, adam.param_groups[0]["params"]))  # the compact form's weights
    assert set(masks) == ({"fc1", "fc2", "fc3"} if prune_last else {"fc1", "fc2"})
    for name, mask in masks.items():
        w = layers[name].weight.detach()
        assert (w[~mask] == 0).all()  # pruned weights exactly zero after every step
        assert not torch.equal(w[mask], before[f"{name}.weight"][mask])  # kept ones trained
        moments, kept = adam.state[trained[name]], trained[name].detach() != 0
        for key in ("exp_avg", "exp_avg_sq"):
            assert (moments[key][~kept] == 0).all()
            assert moments[key][kept].abs().sum() > 0
    if not prune_last:  # the logits layer is outside the mask and is trained
        assert not torch.equal(layers["fc3"].weight.detach(), before["fc3.weight"])


def test_plain_training_would_revive_pruned_weights(data, dense):
    """Control: without masks the zeros move, so the test above checks something."""
    model = weight_prune(dense, 80)
    mask = masks_of(model)["fc1"]
    train(model, data["train"], {}, epochs=1, seed=0, progress=False, **TRAIN)
    assert (model.fc1.weight.detach()[~mask] != 0).any()


def test_finetune_is_seeded(data, dense):
    pruned = weight_prune(dense, 90)
    a, ha = finetune(pruned, data["train"], {"val": data["val"]}, epochs=1, seed=3, **TRAIN)
    b, hb = finetune(pruned, data["train"], {"val": data["val"]}, epochs=1, seed=3, **TRAIN)
    c, _ = finetune(pruned, data["train"], {"val": data["val"]}, epochs=1, seed=4, **TRAIN)
    assert same_state(state(a), state(b))
    pd.testing.assert_frame_equal(ha.drop(columns="seconds"), hb.drop(columns="seconds"))
    assert not same_state(state(a), state(c))
    assert masks_of(a)["fc1"].equal(masks_of(c)["fc1"])  # same mask, different weights


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, r"epochs must be a positive integer \(>= 1\), got 0"),
        ({"epochs": 1.5}, r"epochs .* got 1.5"),
        ({"lr": 0.0}, r"lr must be a finite number > 0, got 0.0"),
        ({"lr": -1e-3}, r"lr .* got -0.001"),
        ({"batch_size": 0}, r"batch_size must be a positive integer \(>= 1\), got 0"),
        ({"seed": -1}, r"seed must be a non-negative integer \(>= 0\), got -1"),
    ],
)
def test_finetune_rejects_bad_arguments(data, dense, kwargs, match):
    args = {"epochs": 1, "lr": 1e-3, "batch_size": 64, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        finetune(dense, data["train"], {}, **args)


# --- schedules -------------------------------------------------------------------------


@pytest.mark.parametrize("k_final, n_steps, k_initial", [(99, 10, 0), (97.5, 7, 0), (90, 3, 50), (0, 4, 0)])
def test_cubic_schedule_is_monotone_and_ends_at_k_final(k_final, n_steps, k_initial):
    levels = cubic_schedule(k_final, n_steps, k_initial)
    assert len(levels) == n_steps
    assert levels[-1] == k_final  # exactly
    assert all(a <= b for a, b in zip(levels, levels[1:]))
    assert all(k_initial <= k <= k_final for k in levels)
    steps = [b - a for a, b in zip([k_initial, *levels], levels)]
    assert all(a >= b - 1e-12 for a, b in zip(steps, steps[1:]))  # fast first, then slower


def test_cubic_schedule_values():
    assert cubic_schedule(80, 1) == [80.0]
    assert cubic_schedule(80, 2) == pytest.approx([70.0, 80.0])  # 80 - 80 * (1/2)^3
    assert cubic_schedule(80, 4, 16)[0] == pytest.approx(80 - 64 * 0.75**3)


# --- gradual pruning -----------------------------------------------------


@pytest.fixture
def gradual_trace(monkeypatch):
    """What gradual pruning's one train() call does: the masks of every pruning step (of the
    network in its own shape), the widths of the form trained after it, how many optimisers it
    made, and after every optimiser step whether a masked weight of the form or one of its Adam
    moments was non-zero."""
    trace = {"masks": [], "widths": [], "steps_at": [], "optimisers": 0, "steps": 0, "violations": 0}

    def recording_train(model, *args, prune_at=None, **kwargs):
        current = {}

        def recording_prune_at(step, optimiser):
            reformed = prune_at(step, optimiser)
            if reformed is not None:
                form, masks = reformed
                layers = dict(form.named_modules())
                current.clear()
                current.update({layers[name].weight: mask for name, mask in masks.items()})
                trace["masks"].append(masks_of(prune_at.full))
                trace["widths"].append(form.widths)
                trace["steps_at"].append(step)
            return reformed

        def check(optimiser, *_):
            trace["steps"] += 1
            for weight, mask in current.items():
                moments = optimiser.state[weight]
                if weight[~mask].any() or moments["exp_avg"][~mask].any() or moments["exp_avg_sq"][~mask].any():
                    trace["violations"] += 1

        class CheckedAdam(Adam):
            def __init__(self, *a, **kw):
                super().__init__(*a, **kw)
                trace["optimisers"] += 1
                self.register_step_post_hook(check)

        monkeypatch.setattr(torch.optim, "Adam", CheckedAdam)
        return train(model, *args, prune_at=recording_prune_at, **kwargs)

    monkeypatch.setattr(recovery, "train", recording_train)
    return trace


Adam = torch.optim.Adam


def assert_exact_counts(model, k, method, prune_last=False):
    layers = linear_layers(model)
    for i, (name, layer) in enumerate(layers):
        w = layer.weight.detach()
        if i == len(layers) - 1 and not prune_last:
            assert torch.count_nonzero(w) == w.numel(), name
        elif method == "weight":
            assert int((w == 0).sum()) == n_to_prune(k, w.numel()), name
        else:
            zero_rows = (w == 0).all(dim=1)
            assert int(zero_rows.sum()) == n_to_prune(k, w.shape[0]), name
            assert torch.count_nonzero(w) == int((~zero_rows).sum()) * w.shape[1], name


def assert_monotone(masks):
    for before, after in zip(masks, masks[1:]):
        for name in before:
            assert not (after[name] & ~before[name]).any(), "a pruned weight came back"


@pytest.mark.parametrize("method, k", [("weight", 97.5), ("weight", 90), ("unit", 90), ("unit", 62.5)])
def test_gradual_prune_is_one_run_that_reaches_the_target(data, dense, gradual_trace, method, k):
    before = state(dense)
    model, history = gradual_prune(dense, data["train"], {"val": data["val"]}, k=k, method=method,
                                   epochs=2, seed=0, prune_every=2, ramp=0.5, **TRAIN)
    assert same_state(state(dense), before)
    assert_exact_counts(model, k, method)
    # 512 examples / 64 = 8 steps per epoch, 16 in all; the ramp ends after 8: steps 0, 2, .., 8
    assert gradual_trace["optimisers"] == 1 and gradual_trace["steps"] == 16
    assert gradual_trace["steps_at"] == [0, 2, 4, 6, 8]
    assert gradual_trace["violations"] == 0
    assert_monotone(gradual_trace["masks"])
    unit = 1 if method == "weight" else dense.fc1.weight.shape[1]
    assert [int((~m["fc1"]).sum()) // unit for m in gradual_trace["masks"]] == [
        n_to_prune(level, dense.fc1.weight.numel() // unit) for level in cubic_schedule(k, 5)]
    assert list(history.epoch) == [1, 2]
    if method == "unit":  # each step trains the network its live neurons form
        assert [w[1] for w in gradual_trace["widths"]] == [32 - n_to_prune(level, 32) for level in cubic_schedule(k, 5)]


def test_gradual_prune_options(data, dense, gradual_trace):
    # ramp 0: one-shot then training at the final mask; prune_last prunes the logits too
    model, _ = gradual_prune(dense, data["train"], {}, k=75, method="weight", epochs=1,
                             seed=0, ramp=0.0, prune_last=True, **TRAIN)
    assert gradual_trace["steps_at"] == [0] and gradual_trace["violations"] == 0
    assert_exact_counts(model, 75, "weight", prune_last=True)


def test_gradual_prune_is_seeded(data, dense):
    kwargs = {"k": 90, "method": "weight", "epochs": 1, "prune_every": 2, **TRAIN}
    a, ha = gradual_prune(dense, data["train"], {"val": data["val"]}, seed=1, **kwargs)
    b, hb = gradual_prune(dense, data["train"], {"val": data["val"]}, seed=1, **kwargs)
    c, _ = gradual_prune(dense, data["train"], {"val": data["val"]}, seed=2, **kwargs)
    assert same_state(state(a), state(b))
    pd.testing.assert_frame_equal(ha.drop(columns="seconds"), hb.drop(columns="seconds"))
    assert not same_state(state(a), state(c))


def masked_gradual(dense, train_split, *, k, method, epochs, seed, prune_every):
    """Gradual pruning as masked training of the network in its own shape: at each step, what
    can no longer affect the loss (pruned weights, and the weights into and out of a neuron
    with no output or no reader) loses its Adam moments, so that it stops moving, as it does
    when the forms drop it."""
    full = copy.deepcopy(dense)
    steps = epochs * -(-len(train_split) // TRAIN["batch_size"])
    levels = cubic_schedule(k, int(0.5 * steps // prune_every) + 1)

    def prune_at(step, optimiser):
        t, due = divmod(step, prune_every)
        if due or t >= len(levels):
            return None
        masks = prune_in_place(full, levels[t], pruning_method(method).mask)[1]
        layers = [layer for _, layer in linear_layers(full)]
        frozen = [layer.weight == 0 for layer in layers]
        for i, (layer, reader) in enumerate(zip(layers, layers[1:])):
            dead = (layer.weight == 0).all(dim=1) | (reader.weight == 0).all(dim=0)  # no output, or no reader
            frozen[i][dead, :] = True
            frozen[i + 1][:, dead] = True
        for layer, still in zip(layers, frozen):
            for moment in ("exp_avg", "exp_avg_sq"):
                if moment in optimiser.state.get(layer.weight, {}):
                    optimiser.state[layer.weight][moment][still] = 0
        return full, masks

    train(full, train_split, {}, epochs=epochs, seed=seed, prune_at=prune_at, progress=False, **TRAIN)
    return full


@pytest.mark.parametrize("method, k, csr_from_k", [("unit", 75, None), ("unit", 50, None), ("weight", 90, None),
                                                   ("weight", 90, 50)])
def test_gradual_pruning_in_smaller_forms_equals_masked_gradual_pruning(data, dense, method, k, csr_from_k):
    """Gradual pruning trains, after each step, the compact (or CSR) form of what is left;
    masked training of the whole network, same seed and data order, ends in the same network
    within float tolerance and the same predictions."""
    common = {"k": k, "method": method, "epochs": 2, "seed": 3, "prune_every": 2}
    small, _ = gradual_prune(dense, data["train"], {}, csr_from_k=csr_from_k, **common, **TRAIN)
    masked = masked_gradual(dense, data["train"], **common)
    for (name, a), (_, b) in zip(linear_layers(small), linear_layers(masked)):
        torch.testing.assert_close(a.weight, b.weight, rtol=1e-3, atol=1e-4, msg=name)
        assert torch.equal(a.weight == 0, b.weight == 0), name
    x = data["val"].images
    assert torch.equal(small(x).argmax(1), masked(x).argmax(1))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"k": 100}, r"\[0, 100\), got 100"),
        ({"method": "neuron"}, r"unknown pruning method 'neuron'; accepted: \['unit', 'weight'\]"),
        ({"ramp": 1.0}, r"ramp must be a fraction of training in \[0, 1\), got 1.0"),
        ({"ramp": -0.1}, r"ramp .* got -0.1"),
        ({"prune_every": 0}, r"prune_every must be a positive integer \(>= 1\), got 0"),
        ({"epochs": 0}, r"epochs must be a positive integer \(>= 1\), got 0"),
        ({"lr": 0}, r"lr must be a finite number > 0, got 0"),
        ({"k_initial": 95}, r"k_initial must be in \[0, k=90.0\], got 95"),
    ],
)
def test_gradual_prune_rejects_bad_arguments(data, dense, kwargs, match):
    args = {"k": 90, "epochs": 1, "lr": 1e-3, "batch_size": 64, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        gradual_prune(dense, data["train"], {}, **args)


# --- compact training and the scratch control -----------------------------------------


@pytest.mark.parametrize("prune, k", [(unit_prune, 75), (unit_prune, 50), (weight_prune, 90)])
def test_compact_training_equals_masked_training(data, dense, prune, k):
    """Fine-tuning trains the compact form; training the masked network instead, same seed and
    data order, ends in the same network within float tolerance and the same predictions."""
    pruned = prune(dense, k)
    compact, _ = finetune(pruned, data["train"], {}, epochs=2, seed=3, **TRAIN)
    masked = copy.deepcopy(pruned)
    train(masked, data["train"], {}, epochs=2, seed=3, masks=masks_of(masked), progress=False, **TRAIN)
    for (name, a), (_, b) in zip(linear_layers(compact), linear_layers(masked)):
        # Adam divides by the root of the second moment: a gradient that is zero but for
        # rounding moves its weight by up to lr per step, so a few weights differ by ~1e-5
        torch.testing.assert_close(a.weight, b.weight, rtol=1e-3, atol=1e-4, msg=name)
        assert torch.equal(a.weight == 0, b.weight == 0), name
    x = data["val"].images
    assert torch.equal(compact(x).argmax(1), masked(x).argmax(1))
    assert evaluate(compact, data["val"])["accuracy"] == pytest.approx(evaluate(masked, data["val"])["accuracy"])


def test_unit_finetuning_trains_the_compact_network(data, dense, monkeypatch):
    shapes = []

    def recording_train(model, *args, **kwargs):
        shapes.append(model.widths)
        return train(model, *args, **kwargs)

    monkeypatch.setattr(recovery, "train", recording_train)
    finetune(unit_prune(dense, 75), data["train"], {}, epochs=1, seed=0, **TRAIN)
    assert shapes == [(784, 8, 8, 10)]


@pytest.mark.parametrize("prune, k", [(unit_prune, 75), (weight_prune, 90)])
def test_scratch_control_keeps_the_shape_and_mask_with_fresh_weights(data, dense, prune, k, monkeypatch):
    pruned = prune(dense, k)
    initial = []

    def recording_train(model, *args, **kwargs):
        initial.append(copy.deepcopy(model))
        return train(model, *args, **kwargs)

    monkeypatch.setattr(recovery, "train", recording_train)
    model, history = recovery.scratch(pruned, data["train"], {"val": data["val"]}, epochs=3, seed=0, **TRAIN)
    start = initial[0]
    from helpers.compact import compact_units
    assert start.widths == compact_units(pruned).widths
    for (name, fresh), (_, trained) in zip(linear_layers(start), linear_layers(compact_units(pruned))):
        assert torch.equal(fresh.weight == 0, trained.weight == 0), name  # the pruned mask, kept
        kept = trained.weight != 0
        assert not torch.isclose(fresh.weight[kept], trained.weight[kept]).any(), name  # fresh values
    assert_masks_equal(masks_of(model), masks_of(pruned))
    assert history.train_loss.is_monotonic_decreasing  # it learns


def assert_masks_equal(a, b):
    assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


def test_weight_reranking_keeps_zeros_pruned(dense, data):
    """The property gradual pruning relies on, shown directly: prune, train with the mask,
    prune further by |w|: everything pruned before is pruned again."""
    model = weight_prune(dense, 50)
    first = masks_of(model)
    train(model, data["train"], {}, epochs=1, seed=0, masks=first, progress=False, **TRAIN)
    for name, layer in linear_layers(model)[:-1]:
        second = weight_mask(layer.weight, 80)
        assert not (second & ~first[name]).any()
        assert int((~second).sum()) == n_to_prune(80, layer.weight.numel())



# --- sensitivity -----------------------------------------------------------------------


def test_sensitivity_prunes_only_the_named_layer(data, dense, monkeypatch):
    before = state(dense)
    seen = []

    def recording_evaluate(model, split, batch_size):
        seen.append({name: layer.weight.detach().clone() for name, layer in linear_layers(model)})
        return evaluate(model, split, batch_size)

    monkeypatch.setattr(sensitivity_module, "evaluate", recording_evaluate)
    ks = [0, 50, 90]
    table = sensitivity(dense, data["val"], ks, method=["weight", "unit"])
    assert same_state(state(dense), before)
    assert list(table.columns) == ["layer", "method", "k", "n_pruned", "layer_sparsity", "emptied", "accuracy", "loss"]
    assert not table.emptied.any()
    assert len(table) == 3 * 2 * 3 == len(seen)
    assert list(table.groupby(["layer", "method"]).size()) == [3] * 6
    for row, weights in zip(table.itertuples(), seen):
        for name, w in weights.items():
            if name == row.layer:
                n = w.numel() if row.method == "weight" else w.shape[0]
                assert row.n_pruned == n_to_prune(row.k, n)
                assert row.layer_sparsity == pytest.approx(float((w == 0).float().mean()))
                if row.method == "unit":
                    assert int((w == 0).all(dim=1).sum()) == row.n_pruned
            else:
                assert torch.equal(w, before[f"{name}.weight"]), (row, name)
    dense_metrics = evaluate(dense, data["val"])
    for row in table[table.k == 0].itertuples():
        assert row.accuracy == dense_metrics["accuracy"] and row.loss == pytest.approx(dense_metrics["loss"])
    # the rows match pruning that layer by hand
    row = table[(table.layer == "fc2") & (table.method == "weight") & (table.k == 90)].iloc[0]
    manual = copy.deepcopy(dense)
    with torch.no_grad():
        manual.fc2.weight.mul_(weight_mask(manual.fc2.weight, 90))
    assert row.accuracy == evaluate(manual, data["val"])["accuracy"]


def test_sensitivity_says_when_a_level_empties_the_layer(data, dense):
    """Unit pruning of the 10 logits at k = 95 removes round(9.5) = 10 of them: said, not hidden."""
    table = sensitivity(dense, data["val"], [90, 95], method="unit", layers=["fc3"])
    assert list(table.n_pruned) == [9, 10] and list(table.emptied) == [False, True]
    assert table.accuracy.iloc[1] == pytest.approx(float((data["val"].labels == 0).float().mean()))


def test_sensitivity_layers_and_errors(data, dense):
    table = sensitivity(dense, data["val"], [80], layers=["fc3"])
    assert list(table.layer) == ["fc3"] and list(table.method) == ["weight"]
    with pytest.raises(ValueError, match=r"unknown layer\(s\) \['fc9'\]; accepted: \['fc1', 'fc2', 'fc3'\]"):
        sensitivity(dense, data["val"], [80], layers=["fc9"])
    with pytest.raises(ValueError, match=r"unknown pruning method 'rows'; accepted"):
        sensitivity(dense, data["val"], [80], method="rows")
    with pytest.raises(ValueError, match=r"ks must hold at least one level in \[0, 100\)"):
        sensitivity(dense, data["val"], [])
    with pytest.raises(ValueError, match=r"\[0, 100\), got 100"):
        sensitivity(dense, data["val"], [50, 100])


# --- iterative pruning: learning-rate rewinding, the lottery ticket, its control ---------


@pytest.mark.parametrize("k_final, rate", [(99.7, 0.4), (95, 0.2), (90, 0.4), (30, 0.4)])
def test_the_iterative_path_removes_the_same_fraction_of_the_survivors_each_round(k_final, rate):
    path = recovery.iterative_path(k_final, rate)
    assert path[-1] == k_final and path == sorted(path) and len(set(path)) == len(path)
    exact = [100 * (1 - (1 - rate) ** r) for r in range(1, len(path))]
    assert all(abs(k - e) <= 0.005 + 1e-9 for k, e in zip(path, exact))  # rounded to 0.01 point
    assert len(path) == 1 or 100 * (1 - (1 - rate) ** len(path)) >= k_final  # no round short of the rate but the last


def test_iterative_path_values():
    assert recovery.iterative_path(90, 0.4) == [40.0, 64.0, 78.4, 87.04, 90]
    assert recovery.iterative_path(30, 0.4) == [30]


def _rounds(data, dense, method, tmp_path, monkeypatch, strategy):
    from helpers import retraining
    starts, rates = [], []

    def recording_train(model, *args, lr, **kwargs):
        starts.append(copy.deepcopy(model))
        rates.append(lr)
        return train(model, *args, lr=lr, **kwargs)

    monkeypatch.setattr(recovery, "train", recording_train)
    models = retraining.DenseModels({0: dense}, {0: "fingerprint"})
    budget = retraining.Budget(epochs=1, lr=2e-3, batch_size=64)
    path = recovery.iterative_path(90, 0.4)[-3:]
    jobs = [retraining.Retraining(strategy, method, k, 0, budget, path=tuple(path[:i])) for i, k in enumerate(path)]
    networks = [retraining.retrained(job, models, data["train"], tmp_path) for job in jobs]
    return models, budget, path, jobs, networks, starts, rates


@pytest.mark.parametrize("method", ["weight", "unit"])
def test_learning_rate_rewinding_starts_each_round_from_the_round_before_at_the_recipes_rate(
        data, dense, method, tmp_path, monkeypatch):
    from helpers import retraining
    models, budget, path, jobs, networks, starts, rates = _rounds(data, dense, method, tmp_path, monkeypatch, "lrr")
    assert len(starts) == len(path) and rates == [2e-3] * len(path)  # each round trains once, from the recipe's rate
    assert [job.epochs for job in jobs] == [1, 2, 3]
    for k, network in zip(path, networks):
        assert_exact_counts(network, k, method)
    assert_monotone([masks_of(n) for n in networks])
    # round r starts from the network round r - 1 left, pruned further (compact for its dead units)
    from helpers.compact import compact_units
    for before, start, k in zip(networks, starts[1:], path[1:]):
        assert same_state(state(compact_units(prune(before, k, method))), state(start))
    # a rerun trains nothing: every round, the last included, comes from the cache
    starts.clear()
    assert same_state(state(retraining.retrained(jobs[-1], models, data["train"], tmp_path)), state(networks[-1]))
    assert starts == []
    # the rounds' records chain: the same level reached along another path is another network
    other = retraining.Retraining("lrr", method, path[-1], 0, budget, path=(path[0],))
    assert other.record("f", data["train"]) != jobs[-1].record("f", data["train"])


def test_a_lottery_ticket_round_resets_the_survivors_to_their_initial_values(data, dense, tmp_path, monkeypatch):
    from helpers.compact import compact_units
    from helpers.training import initial_model
    _, _, path, _, networks, starts, _ = _rounds(data, dense, "weight", tmp_path, monkeypatch, "ticket")
    initial = initial_model(0, dense.widths[1:-1])
    for before, start, k in zip([dense, *networks], starts, path):
        mask = masks_of(prune(before, k, "weight"))  # the mask: the trained network's smallest weights removed
        expected = copy.deepcopy(initial)
        with torch.no_grad():
            for name, kept in mask.items():
                dict(expected.named_modules())[name].weight.mul_(kept)
        assert same_state(state(compact_units(expected)), state(start)), "kept weights at their initial values"
    assert_monotone([masks_of(n) for n in networks])


def test_the_re_initialised_control_takes_the_tickets_mask_with_fresh_weights(data, dense, tmp_path, monkeypatch):
    from helpers import retraining
    models, budget, path, jobs, networks, starts, _ = _rounds(data, dense, "weight", tmp_path, monkeypatch, "ticket")
    control = retraining.Retraining("reinit", "weight", path[-1], 0, budget, path=tuple(path[:-1]))
    assert control.previous() == jobs[-2], "it starts from the ticket's round before"
    starts.clear()
    network = retraining.retrained(control, models, data["train"], tmp_path)
    assert len(starts) == 1, "the ticket's rounds come from the cache; the control trains once"
    ticket_mask, control_mask = masks_of(networks[-1]), masks_of(network)
    assert all(torch.equal(ticket_mask[n], control_mask[n]) for n in ticket_mask), "the ticket's mask"
    assert not same_state(state(starts[0]), state(networks[-1])), "other weights"


def test_schedules_that_turn_a_strategy_into_another_are_named(study_model):
    from helpers.retraining import Budget
    from helpers.study import degenerate_schedules as degenerate

    def degenerate_schedules(params, images, model, method):  # the dense recipe: 10 epochs at 2e-3
        return degenerate(params, images, model, method, Budget(10, 2e-3, 256))

    params = {"strategies": ["oneshot", "finetune", "gradual", "lrr"], "validation_size": 200,
              "recovery_epochs": 1, "recovery_batch_size": 256, "control_ks": [90], "imp_rate": 0.4, "sweep_seeds": 3,
              "prune_last": False, "target_ks": [], "target_epochs": 3, "longest_epochs": 10}
    found = degenerate_schedules(params, 1000, study_model, "weight")
    assert found == [
        "gradual pruning in the sweep and its trials: 1 epoch(s) on 1,000 images in batches of 256 is 4 optimiser "
        "steps, too few for 10 pruning steps in the first half of the run (it takes 3): not the gradual pruning of "
        "Zhu & Gupta; give more images or epochs"]
    assert degenerate_schedules({**params, "recovery_batch_size": 32}, 1000, study_model, "weight") == []
    assert degenerate_schedules({**params, "strategies": ["gradual"]}, 60_000, study_model, "weight") == []
    # rounds of 0.01 % of the neurons of layers of 200 to 1,000: none loses a neuron
    many = degenerate_schedules({**params, "strategies": ["ticket"], "imp_rate": 0.0001, "control_ks": [0.03]},
                                1000, study_model, "unit")
    assert many == ["the path of lottery ticket [0.01, 0.02, 0.03] (0.01 % of the survivors per round to 0.03 %) "
                    "has 3 round(s) that remove no neuron more than the round before (at [0.01, 0.02, 0.03]): it "
                    "runs 0 rounds of pruning, not 3"]
    longer = degenerate_schedules({**params, "strategies": ["finetune"], "target_ks": [90], "target_epochs": 1,
                                   "longest_epochs": 1}, 60_000, study_model, "weight")
    assert longer == ["target_epochs = 1 is no longer than recovery_epochs = 1: the longer budget at target_ks "
                      "repeats the sweep's"]  # longest_epochs = target_epochs asks for no longest budget
    shorter = degenerate_schedules({**params, "strategies": ["finetune"], "target_ks": [90], "target_epochs": 3,
                                    "longest_epochs": 2}, 60_000, study_model, "weight")
    assert shorter == ["longest_epochs = 2 is shorter than target_epochs = 3: no strategy gets the longest budget"]


def test_gradual_pruning_steps_are_zhu_and_gupta_s_interval_or_closer_to_keep_ten():
    # 10 epochs of 55,000 images in batches of 256: 2,150 steps, a ramp of 1,075: every 100 steps
    assert recovery.pruning_interval(2150) == 100
    assert recovery.gradual_pruning_steps(55_000, 10, 256) == (2150, 11)
    # 1 epoch: 215 steps, a ramp of 107: every 11 steps, ten pruning steps
    assert recovery.gradual_pruning_steps(55_000, 1, 256) == (215, 10)
