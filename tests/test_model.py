import pytest
import torch

from helpers.cost import count_nonzero_weights, count_weights
from helpers.model import MLP, linear_layers


def test_study_network_has_the_studys_shape_and_no_bias(study_model):
    assert count_weights(study_model) == 2_386_000
    assert sum(p.numel() for p in study_model.parameters()) == 2_386_000
    assert [n for n, _ in linear_layers(study_model)] == ["fc1", "fc2", "fc3", "fc4", "fc5"]
    assert all(layer.bias is None for _, layer in linear_layers(study_model))
    assert study_model.widths == (784, 1000, 1000, 500, 200, 10)
    assert [(m.in_features, m.out_features) for _, m in linear_layers(study_model)] == [
        (784, 1000), (1000, 1000), (1000, 500), (500, 200), (200, 10)]


def test_forward_flattens_images_and_returns_logits(study_model):
    out = study_model(torch.randn(7, 28, 28))
    assert out.shape == (7, 10)


def test_hidden_layers_use_relu(small_model):
    x = torch.randn(5, 50)
    h = x
    for name in ("fc1", "fc2", "fc3"):
        h = torch.relu(getattr(small_model, name)(h))
    assert torch.allclose(small_model(x), small_model.fc4(h))


def test_count_nonzero_weights(small_model):
    with torch.no_grad():
        small_model.fc1.weight[:3] = 0
    assert count_nonzero_weights(small_model) == count_weights(small_model) - 3 * 50


@pytest.mark.parametrize("hidden", [(0,), (10, -1), (2.5,)])
def test_bad_widths_are_rejected(hidden):
    with pytest.raises(ValueError, match="positive integers"):
        MLP(hidden=hidden)
