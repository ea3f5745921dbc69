import copy
import math

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from helpers.cost import count_nonzero_weights, layer_sparsity, sparsity
from helpers.pruning import (
    METHODS,
    global_weight_prune,
    method,
    n_to_prune,
    prune,
    thresholds,
    unit_prune,
    weight_mask,
    weight_prune,
)
from helpers.pruning import STUDY_KS

HIDDEN = ("fc1", "fc2", "fc3")


def zero_rows(weight):
    return int((weight == 0).all(dim=1).sum())


@pytest.mark.parametrize("k", STUDY_KS)
def test_weight_prune_removes_round_k_percent_of_each_hidden_layer(small_model, k):
    pruned = weight_prune(small_model, k)
    for name in HIDDEN:
        w = getattr(pruned, name).weight
        assert int((w == 0).sum()) == round(k / 100 * w.numel())
    assert torch.count_nonzero(pruned.fc4.weight) == pruned.fc4.weight.numel()


@pytest.mark.parametrize("k", STUDY_KS)
def test_unit_prune_zeroes_whole_rows(small_model, k):
    pruned = unit_prune(small_model, k)
    for name in HIDDEN:
        w = getattr(pruned, name).weight
        n_rows = round(k / 100 * w.shape[0])
        assert zero_rows(w) == n_rows
        # only whole rows: every zero lies in an all-zero row
        assert int((w == 0).sum()) == n_rows * w.shape[1]
    assert torch.equal(pruned.fc4.weight, small_model.fc4.weight)


@pytest.mark.parametrize("prune_fn", [weight_prune, unit_prune, global_weight_prune])
def test_pruning_returns_a_copy_and_leaves_the_model_unchanged(small_model, prune_fn):
    before = copy.deepcopy(small_model.state_dict())
    pruned = prune_fn(small_model, 90)
    assert pruned is not small_model
    for name, tensor in small_model.state_dict().items():
        assert torch.equal(tensor, before[name])
        assert pruned.state_dict()[name].data_ptr() != tensor.data_ptr()


@pytest.mark.parametrize("prune_fn", [weight_prune, unit_prune])
def test_prune_last_also_prunes_the_logits_layer(small_model, prune_fn):
    assert torch.count_nonzero(prune_fn(small_model, 50).fc4.weight) == small_model.fc4.weight.numel()
    assert torch.count_nonzero(prune_fn(small_model, 50, prune_last=True).fc4.weight) == small_model.fc4.weight.numel() // 2


def test_unit_prune_keeps_the_rows_of_largest_norm(small_model):
    pruned = unit_prune(small_model, 50)
    norms = small_model.fc1.weight.norm(dim=1)
    kept = (pruned.fc1.weight != 0).any(dim=1)
    assert norms[kept].min() >= norms[~kept].max()


def test_weight_prune_keeps_the_largest_magnitudes(small_model):
    pruned = weight_prune(small_model, 75)
    w = small_model.fc2.weight.abs()
    kept = pruned.fc2.weight != 0
    assert w[kept].min() >= w[~kept].max()


@pytest.mark.parametrize("k", STUDY_KS)
def test_weight_prune_matches_torch_l1_unstructured(study_model, k):
    ours = weight_prune(study_model, k)
    ref = copy.deepcopy(study_model)
    for name in ("fc1", "fc2", "fc3", "fc4"):
        layer = getattr(ref, name)
        torch_prune.l1_unstructured(layer, "weight", amount=k / 100)
        ref_mask, our_mask = layer.weight_mask.bool(), getattr(ours, name).weight != 0
        assert int((~ref_mask).sum()) == int((~our_mask).sum())
        # same kept set up to ties: where the masks differ, the magnitudes are equal
        differ = ref_mask != our_mask
        if differ.any():
            mags = study_model.state_dict()[f"{name}.weight"].abs()[differ]
            assert torch.allclose(mags, mags[0].expand_as(mags))
        torch.testing.assert_close(getattr(ours, name).weight, layer.weight)


def topk_mask(weight, k):
    """The mask of torch.nn.utils.prune.l1_unstructured: torch.topk of the smallest |w|."""
    mask = torch.ones(weight.numel(), dtype=torch.bool)
    if n := n_to_prune(k, weight.numel()):
        mask[torch.topk(weight.abs().reshape(-1), n, largest=False).indices] = False
    return mask.reshape(weight.shape)


@pytest.mark.parametrize("k", [0, 0.1, 25, 50, 90, 99, 99.9])
def test_the_selected_cut_gives_topks_mask_exactly_with_and_without_ties(k):
    torch.manual_seed(0)
    distinct = torch.randn(300, 200)
    tied = distinct.clone()
    tied[:100] = 0.0  # a previous pruning's zeros: ties below (and at) the cut
    tied[100:150] = 0.5  # one value many times: a tie straddles some cuts
    tied[150:160] = -0.5
    for weight in (distinct, tied):
        assert torch.equal(weight_mask(weight, k), topk_mask(weight, k))


@pytest.mark.parametrize("k", STUDY_KS)
def test_unit_prune_matches_torch_ln_structured_on_rows(study_model, k):
    ours = unit_prune(study_model, k)
    ref = copy.deepcopy(study_model)
    for name in ("fc1", "fc2", "fc3", "fc4"):
        layer = getattr(ref, name)
        torch_prune.ln_structured(layer, "weight", amount=k / 100, n=2, dim=0)
        assert torch.equal(layer.weight_mask.bool(), getattr(ours, name).weight != 0)
        torch.testing.assert_close(getattr(ours, name).weight, layer.weight)


@pytest.mark.parametrize("k", [0, 50, 90, 99])
def test_global_weight_prune_matches_torch_global_unstructured(study_model, k):
    ours = global_weight_prune(study_model, k)
    ref = copy.deepcopy(study_model)
    params = [(getattr(ref, n), "weight") for n in ("fc1", "fc2", "fc3", "fc4")]
    torch_prune.global_unstructured(params, pruning_method=torch_prune.L1Unstructured, amount=k / 100)
    total = sum(m.weight.numel() for m, _ in params)
    removed = sum(int((getattr(ours, n).weight == 0).sum()) for n in ("fc1", "fc2", "fc3", "fc4"))
    assert removed == round(k / 100 * total)
    for module, _ in params:
        name = [n for n, m in ref.named_modules() if m is module][0]
        assert torch.equal(module.weight_mask.bool(), getattr(ours, name).weight != 0)
    assert torch.equal(ours.fc5.weight, study_model.fc5.weight)


def test_global_ranking_gives_layers_different_sparsities(study_model):
    per_layer = layer_sparsity(global_weight_prune(study_model, 90))
    assert per_layer["fc5"] == 0
    assert max(per_layer[n] for n in ("fc1", "fc2", "fc3", "fc4")) - min(
        per_layer[n] for n in ("fc1", "fc2", "fc3", "fc4")) > 0.01


@pytest.mark.parametrize("k", [-1, 100, 150, math.nan, math.inf])
@pytest.mark.parametrize("prune_fn", [weight_prune, unit_prune, global_weight_prune])
def test_out_of_range_k_is_rejected_with_the_range(small_model, prune_fn, k):
    with pytest.raises(ValueError, match=r"\[0, 100\)"):
        prune_fn(small_model, k)


@pytest.mark.parametrize("k", ["50", None, True])
def test_non_numeric_k_is_rejected(small_model, k):
    with pytest.raises(TypeError, match=r"\[0, 100\)"):
        weight_prune(small_model, k)


def test_works_on_any_module_made_of_bias_free_linear_layers():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(8, 6, bias=False), nn.ReLU(), nn.Linear(6, 4, bias=False), nn.ReLU(),
                        nn.Linear(4, 2, bias=False))
    pruned = unit_prune(net, 50)
    assert zero_rows(pruned[0].weight) == 3 and zero_rows(pruned[2].weight) == 2
    assert zero_rows(pruned[4].weight) == 0


@pytest.mark.parametrize("prune_fn", [weight_prune, unit_prune, global_weight_prune])
def test_layers_with_a_bias_are_refused_by_name(prune_fn):
    """A zeroed row with a bias left in place would still output relu(bias): not a removed neuron."""
    net = nn.Sequential(nn.Linear(8, 6, bias=False), nn.ReLU(), nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"with a bias \(2, 4\); .* bias=False"):
        prune_fn(net, 50)


@pytest.mark.parametrize("model, error, match", [
    (nn.Sequential(nn.ReLU()), ValueError, "no nn.Linear"),
    (nn.Sequential(nn.Conv2d(1, 4, 3, bias=False)), ValueError, "no nn.Linear"),
    (nn.Sequential(nn.Linear(4, 2, bias=False)), ValueError, r"only nn.Linear \(0\) is the logits layer.*prune_last=True"),
    ({"fc1.weight": torch.ones(2, 2)}, TypeError, "expected a torch.nn.Module to prune, got dict"),
])
@pytest.mark.parametrize("prune_fn", [weight_prune, unit_prune, global_weight_prune])
def test_models_that_cannot_be_pruned_are_refused(prune_fn, model, error, match):
    with pytest.raises(error, match=match):
        prune_fn(model, 50)


def test_a_single_logits_layer_is_pruned_when_asked():
    net = nn.Sequential(nn.Linear(4, 2, bias=False))
    assert int((weight_prune(net, 50, prune_last=True)[0].weight == 0).sum()) == 4


def test_sparsity_is_measured_over_the_pruned_layers(study_model):
    pruned = weight_prune(study_model, 90)
    assert sparsity(pruned) == pytest.approx(0.9, abs=1e-6)
    expected = 2_386_000 - round(0.9 * 784_000) - round(0.9 * 1_000_000) - round(0.9 * 500_000) - round(0.9 * 100_000)
    assert count_nonzero_weights(pruned) == expected


def test_count_rounds_like_torch():
    assert n_to_prune(92.5, 200) == 185
    assert n_to_prune(25, 10) == round(0.25 * 10) == 2  # round half to even, as torch does
    assert n_to_prune(0, 1000) == 0


@pytest.mark.parametrize("method", ["weight", "unit"])
def test_thresholds_separate_pruned_from_kept(study_model, method):
    cut = thresholds(study_model, 90, method)
    pruned = (weight_prune if method == "weight" else unit_prune)(study_model, 90)
    for name in ("fc1", "fc2"):
        w = getattr(study_model, name).weight.detach()
        score = w.abs() if method == "weight" else w.norm(dim=1, keepdim=True).expand_as(w)
        removed = getattr(pruned, name).weight == 0
        assert score[removed].max() == pytest.approx(cut[name])
        assert score[~removed].min() >= cut[name]
    assert math.isnan(thresholds(study_model, 0, method)["fc1"])


def test_the_registry_knows_each_method_once():
    assert set(METHODS) == {"weight", "unit"}
    assert method("unit").unit == "neuron" and method("weight").unit == "weight"
    with pytest.raises(ValueError, match=r"unknown pruning method 'neuron'; accepted: \['unit', 'weight'\]"):
        method("neuron")
    with pytest.raises(ValueError, match="unknown pruning method 'rows'"):
        thresholds(torch.nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False)), 50, "rows")


@pytest.mark.parametrize("name", ["weight", "unit"])
def test_prune_by_name_is_the_methods_own_pruning(study_model, name):
    by_name = prune(study_model, 90, name)
    direct = (weight_prune if name == "weight" else unit_prune)(study_model, 90)
    assert all(torch.equal(a, b) for a, b in zip(by_name.state_dict().values(), direct.state_dict().values()))


@pytest.mark.parametrize("name, removed", [("weight", 3), ("unit", 1)])
def test_a_methods_removed_count_is_in_its_own_unit(name, removed):
    mask = torch.ones(4, 3, dtype=torch.bool)
    mask[1] = False
    assert method(name).removed(mask) == removed


def test_a_level_that_empties_a_layer_is_named(study_model):
    from helpers.pruning import check_levels_keep_every_layer, emptied_layers

    assert emptied_layers(study_model, 99, "unit") == []
    assert emptied_layers(study_model, 99.9, "unit") == ["fc3", "fc4"]  # round(499.5) = 500, round(199.8) = 200
    check_levels_keep_every_layer(study_model, [0, 50, 99], "weight")
    with pytest.raises(ValueError, match=r"k = 99.9 % would remove every neuron of fc3, fc4 \(fc3 has 500 neurons, fc4 has 200"):
        check_levels_keep_every_layer(study_model, [50, 99.9], "unit")
    with pytest.raises(ValueError, match=r"k = 99.99 % would remove every weight of fc5 \(fc5 has 2000 weights"):
        check_levels_keep_every_layer(study_model, [99.99], "weight", prune_last=True)


@pytest.mark.parametrize("name", ["weight", "unit"])
def test_a_methods_mask_is_taken_from_the_scores_the_method_ranks(name, study_model):
    """One formula per score: the mask keeps all but the smallest of Method.scores (and a tie
    across the cut is broken as torch.topk breaks it, as torch.nn.utils.prune does)."""
    from helpers.pruning import keep_mask, method, n_to_prune

    m = method(name)
    weight = study_model.fc3.weight
    for k in (25, 90, 99):
        scores = m.scores(weight)
        kept = keep_mask(scores, n_to_prune(k, scores.numel()))
        expected = kept.reshape(weight.shape) if name == "weight" else kept[:, None].expand_as(weight)
        assert torch.equal(m.mask(weight, k), expected)
    tied = torch.tensor([3.0, 1.0, 1.0, 1.0, 2.0])  # three equal scores, two to remove
    by_topk = torch.ones(5, dtype=torch.bool).index_fill_(0, torch.topk(tied, 2, largest=False).indices, False)
    assert torch.equal(keep_mask(tied, 2), by_topk) and int((~by_topk).sum()) == 2


def test_lamp_scores_are_the_square_over_the_squares_at_least_as_large():
    from helpers.pruning import lamp_scores
    weight = torch.tensor([[3.0, -1.0], [2.0, 0.5]])
    # squares 9, 1, 4, 0.25; sums of those at least as large: 9, 14, 13, 14.25
    expected = torch.tensor([[9 / 9, 1 / 14], [4 / 13, 0.25 / 14.25]], dtype=torch.float64)
    assert torch.allclose(lamp_scores(weight), expected)
    assert lamp_scores(weight).max() == 1.0, "every layer's largest weight scores 1: LAMP never empties a layer"


def test_lamp_and_random_keep_the_counts_they_promise(study_model):
    from helpers.pruning import global_weight_prune, lamp_scores, random_weight_prune, prunable_layers
    total = sum(layer.weight.numel() for _, layer in prunable_layers(study_model))
    lamp = global_weight_prune(study_model, 99.0, scores=lamp_scores)
    assert sum(int((layer.weight == 0).sum()) for _, layer in prunable_layers(lamp)) == round(0.99 * total)
    assert all(int((layer.weight != 0).sum()) > 0 for _, layer in prunable_layers(lamp)), "no layer emptied"
    randomly = random_weight_prune(study_model, 90.0, seed=0)
    for (_, layer), (_, dense) in zip(prunable_layers(randomly), prunable_layers(study_model)):
        assert int((layer.weight == 0).sum()) == n_to_prune(90.0, layer.weight.numel())  # magnitude's counts
    assert torch.equal(random_weight_prune(study_model, 90.0, seed=0).fc1.weight, randomly.fc1.weight)
    assert not torch.equal(random_weight_prune(study_model, 90.0, seed=1).fc1.weight, randomly.fc1.weight)
