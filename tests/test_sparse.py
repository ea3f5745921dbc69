"""Tests of helpers.sparse: CSR layers that train the kept weights only, against masked training."""

import copy

import pytest
import torch

from helpers import recovery, retraining, timing
from helpers.compact import compact_units
from helpers.model import linear_layers
from helpers.pruning import prune
from helpers.sparse import SparseLinear, with_sparse_layers, without_sparse_layers
from helpers.training import train

from .conftest import TRAIN, synthetic


def test_a_sparse_layer_computes_what_the_masked_layer_does_and_its_gradients():
    torch.manual_seed(0)
    weight = torch.randn(30, 20) * (torch.rand(30, 20) < 0.2)
    layer = SparseLinear(weight)
    assert layer.values.numel() == int((weight != 0).sum()) and torch.equal(layer.dense_weight(), weight)
    x = torch.randn(8, 20, requires_grad=True)
    masked = weight.clone().requires_grad_()
    g = torch.randn(8, 30)
    layer(x).backward(g)
    grad_x_sparse = x.grad.clone()
    x.grad = None
    (x @ masked.t()).backward(g)
    torch.testing.assert_close(grad_x_sparse, x.grad)
    kept = weight != 0
    torch.testing.assert_close(layer.values.grad, masked.grad[kept])  # row-major, like the values


def test_sparse_layers_go_back_to_the_same_dense_network(dense):
    pruned = prune(dense, 90, "weight")
    sparse = with_sparse_layers(pruned, ["fc1", "fc2"])
    assert isinstance(sparse.fc1, SparseLinear) and not isinstance(sparse.fc3, SparseLinear)
    x = torch.randn(16, 784)
    torch.testing.assert_close(sparse(x), pruned(x))
    back = without_sparse_layers(sparse)
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), pruned.state_dict().values()))


@pytest.mark.parametrize("strategy", ["finetune", "scratch"])
def test_csr_training_equals_masked_training(data, dense, strategy):
    """Fine-tuning (or the scratch control) in CSR and in the compact masked form, same seed and
    data order, end in the same network within float tolerance: the same zeros, the same
    predictions."""
    pruned = prune(dense, 90, "weight")
    retrain = getattr(recovery, strategy)
    sparse, history = retrain(pruned, data["train"], {"val": data["val"]}, epochs=2, seed=3, csr=True, **TRAIN)
    masked, _ = retrain(pruned, data["train"], {}, epochs=2, seed=3, **TRAIN)
    assert all(isinstance(layer, torch.nn.Linear) for _, layer in linear_layers(sparse))  # given back dense
    for (name, a), (_, b) in zip(linear_layers(sparse), linear_layers(masked)):
        # Adam divides by the root of the second moment: rounding-sized gradients move a weight by ~lr
        torch.testing.assert_close(a.weight, b.weight, rtol=1e-3, atol=1e-4, msg=name)
        assert torch.equal(a.weight == 0, b.weight == 0), name  # the mask, fixed, without masking
    x = data["val"].images
    assert torch.equal(sparse(x).argmax(1), masked(x).argmax(1))
    assert history.train_loss.iloc[-1] < history.train_loss.iloc[0]


def test_csr_training_keeps_adam_moments_for_the_kept_weights_only(data, dense, monkeypatch):
    pruned = prune(dense, 95, "weight")
    seen = []

    def recording_train(model, *args, masks, **kwargs):
        seen.append((copy.deepcopy(model), masks))
        return train(model, *args, masks=masks, **kwargs)

    monkeypatch.setattr(recovery, "train", recording_train)
    recovery.finetune(pruned, data["train"], {}, epochs=1, seed=0, csr=True, **TRAIN)
    model, masks = seen[0]
    assert masks == {}  # nothing to mask: the pruned weights are not parameters
    small = compact_units(pruned)  # the dead neurons' weights are dropped too
    kept = sum(int((layer.weight != 0).sum()) for name, layer in linear_layers(small) if name != "fc3")
    values = sum(p.numel() for n, p in model.named_parameters() if n.endswith(".values"))
    assert values == kept


def test_which_retraining_trains_in_csr():
    budget = retraining.Budget(epochs=1, lr=1e-3)
    job = retraining.Retraining("finetune", "weight", 90.0, 0, budget, csr_from_k=85.0)
    assert job.csr and job.record("f", synthetic(8, 0))["csr"] is True
    assert not retraining.Retraining("finetune", "weight", 80.0, 0, budget, csr_from_k=85.0).csr  # below the level
    assert not retraining.Retraining("gradual", "weight", 90.0, 0, budget, csr_from_k=85.0).csr  # its mask moves
    assert not retraining.Retraining("finetune", "unit", 90.0, 0, budget, csr_from_k=85.0).csr  # compact is dense
    below = retraining.Retraining("finetune", "weight", 80.0, 0, budget, csr_from_k=85.0)
    assert "csr" not in below.record("f", synthetic(8, 0))  # records of masked training are unchanged
    assert below.record("f", synthetic(8, 0)) == retraining.Retraining("finetune", "weight", 80.0, 0, budget).record(
        "f", synthetic(8, 0))


def test_retraining_speedup_times_the_csr_form(dense):
    result = timing.retraining_speedup(prune(dense, 95, "weight"), csr=True, n_images=256, rounds=1)
    assert result["csr"] is True and result["speedup"] > 0
