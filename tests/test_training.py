import pandas as pd
import pytest
import torch

from helpers import training
from helpers.data import Split
from helpers.model import MLP
from helpers.pruning import masks_of, weight_prune
from helpers.sweep import check_ks, check_methods, sweep
from helpers.training import TrainConfig, evaluate, train, train_dense


def toy_split(n=2048, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 20, generator=g)
    y = (x[:, :10].argmax(dim=1))  # learnable: the label is the index of the largest of 10 inputs
    return Split(x, y)


def toy_model(seed=0):
    torch.manual_seed(seed)
    return MLP(hidden=(32, 16), in_features=20, n_classes=10)


def fit(seed, masks=None, model=None):
    model = model or toy_model()
    history = train(model, toy_split(), {"test": toy_split(512, seed=1)}, epochs=3, batch_size=64,
                    lr=1e-2, seed=seed, masks=masks, progress=False)
    return model, history


def test_training_learns_and_reports_every_epoch():
    model, history = fit(0)
    assert list(history.columns) == ["epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds"]
    assert list(history.epoch) == [1, 2, 3]
    assert history.train_loss.iloc[-1] < history.train_loss.iloc[0]
    assert history.test_accuracy.iloc[-1] > 0.3  # chance is 0.1
    assert history.test_accuracy.iloc[-1] == evaluate(model, toy_split(512, seed=1))["accuracy"]


def test_same_seed_gives_identical_weights_and_other_seed_does_not():
    a, _ = fit(0)
    b, _ = fit(0)
    c, _ = fit(1)
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name])
    assert not torch.equal(a.fc1.weight, c.fc1.weight)


def test_masks_keep_pruned_weights_at_zero():
    pruned = weight_prune(toy_model(), 80)
    masks = masks_of(pruned)
    before = pruned.fc1.weight.detach().clone()
    model, _ = fit(0, masks=masks, model=pruned)
    for name, mask in masks.items():
        assert torch.all(getattr(model, name).weight[~mask] == 0)
    assert not torch.equal(model.fc1.weight[masks["fc1"]], before[masks["fc1"]])


def test_evaluate_counts_correct_predictions():
    model = MLP(hidden=(4,), in_features=4, n_classes=2)
    with torch.no_grad():
        model.fc1.weight.copy_(torch.eye(4))
        model.fc2.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
    x = torch.tensor([[2.0, 0, 0, 0], [0, 3.0, 0, 0], [5.0, 1.0, 0, 0], [0, 1.0, 0, 0]])
    y = torch.tensor([0, 1, 1, 1])
    result = evaluate(model, Split(x, y), batch_size=3)
    assert result["accuracy"] == 0.75
    expected = torch.nn.functional.cross_entropy(model(x), y).item()
    assert result["loss"] == pytest.approx(expected)


@pytest.mark.parametrize("kwargs, match", [({"epochs": 0}, "epochs"), ({"batch_size": -1}, "batch_size"),
                                           ({"lr": 0.0}, "lr"), ({"seed": -3}, "seed")])
def test_bad_training_arguments_are_rejected(kwargs, match):
    args = {"epochs": 1, "batch_size": 8, "lr": 1e-3, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        train(toy_model(), toy_split(), {}, **args)


def test_config_key_is_stable_and_tracks_every_field():
    assert TrainConfig().key() == TrainConfig().key()
    assert TrainConfig(seed=1).key() != TrainConfig().key()
    assert TrainConfig(dataset="fashion_mnist").key() != TrainConfig().key()
    assert TrainConfig(lr=2e-3).checkpoint_path("c").name.startswith("mnist-dense-seed0-")


def test_train_dense_caches_by_configuration(tmp_path, monkeypatch):
    data = {"train": Split(torch.randn(64, 784), torch.randint(0, 10, (64,))),
            "test": Split(torch.randn(32, 784), torch.randint(0, 10, (32,)))}
    config = TrainConfig(epochs=1, batch_size=32, train_size=64)
    model, history = train_dense(config, data, tmp_path, progress=False)
    assert config.checkpoint_path(tmp_path).is_file()

    def no_training(*args, **kwargs):
        raise AssertionError("a cached configuration must not be trained again")

    monkeypatch.setattr(training, "train", no_training)
    again, history_again = train_dense(config, data, tmp_path, progress=False)
    assert torch.equal(again.fc1.weight, model.fc1.weight)
    pd.testing.assert_frame_equal(history_again, history)
    with pytest.raises(ValueError, match="64"):
        train_dense(TrainConfig(epochs=1, train_size=32), data, tmp_path)


def test_missing_checkpoint_says_which_step_writes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="training notebook"):
        training.load_checkpoint(tmp_path / "none.pt")


def test_sweep_rows_and_validation(small_model):
    data = Split(torch.randn(40, 50), torch.randint(0, 10, (40,)))
    frame = sweep(small_model, data, [90, 0, 50], ["unit", "weight"])
    assert list(zip(frame.method, frame.k)) == [("unit", 0), ("unit", 50), ("unit", 90),
                                               ("weight", 0), ("weight", 50), ("weight", 90)]
    assert {"accuracy", "loss", "sparsity", "nonzero_weights", "sparsity_fc1", "sparsity_fc4"} <= set(frame)
    with pytest.raises(ValueError, match="weight"):
        check_methods(["magnitude"])
    with pytest.raises(ValueError, match=r"\[0, 100\)"):
        check_ks([])
    with pytest.raises(ValueError, match=r"\[0, 100\)"):
        check_ks([50, 100])
