import copy

import pandas as pd
import pytest
import torch

from helpers import checkpoints, training
from helpers.data import Split
from helpers.model import MLP
from helpers.pruning import masks_of, weight_prune
from helpers.sweep import evaluate_pruned
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


def small_data(n_train=64):
    g = torch.Generator().manual_seed(0)
    return {"train": Split(torch.randn(n_train, 784, generator=g), torch.randint(0, 10, (n_train,), generator=g)),
            "test": Split(torch.randn(32, 784, generator=g), torch.randint(0, 10, (32,), generator=g))}


SMALL = dict(hidden=(16, 8), epochs=1, batch_size=32, train_size=64)


@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": 0}, r"epochs must be a positive integer \(>= 1\), got 0"),
    ({"batch_size": -8}, "batch_size must be a positive integer"),
    ({"epochs": 2.5}, "epochs"),
    ({"lr": float("nan")}, "lr must be a finite number > 0"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"hidden": (1000, 0)}, "layer widths must be positive integers"),
    ({"hidden": "1000"}, "hidden must be a sequence"),
    ({"dataset": "cifar10"}, r"unknown dataset 'cifar10'; accepted: \['fashion_mnist', 'mnist'\]"),
    ({"train_size": 0}, "train_size must be None"),
])
def test_bad_training_configuration_is_refused(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        TrainConfig(**kwargs)


def test_train_dense_caches_by_configuration_data_and_versions(tmp_path, monkeypatch):
    data = small_data()
    config = TrainConfig(**SMALL)
    model, history, path = train_dense(config, data, tmp_path, progress=False)
    assert path.is_file() and path.name.startswith("mnist-dense-seed0-")
    record = checkpoints.load_checkpoint(path)[1]["provenance"]
    assert record["train_data"] == data["train"].fingerprint and record["versions"]["torch"] == torch.__version__

    def no_training(*args, **kwargs):
        raise AssertionError("a cached configuration must not be trained again")

    monkeypatch.setattr(training, "train", no_training)
    again, history_again, path_again = train_dense(config, data, tmp_path, progress=False)
    assert torch.equal(again.fc1.weight, model.fc1.weight) and path_again == path
    pd.testing.assert_frame_equal(history_again, history)
    with pytest.raises(AssertionError, match="must not be trained"):  # other data: another cache entry
        other = small_data()
        other["train"] = Split(other["train"].images + 1, other["train"].labels)
        train_dense(config, other, tmp_path, progress=False)
    with pytest.raises(ValueError, match="64"):
        train_dense(TrainConfig(epochs=1, train_size=32), data, tmp_path)


def test_unusable_cached_model_is_recomputed_with_a_warning(tmp_path):
    data, config = small_data(), TrainConfig(**SMALL)
    model, _, path = train_dense(config, data, tmp_path, progress=False)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="recomputing a cached model: .* cannot be read"):
        again, _, _ = train_dense(config, data, tmp_path, progress=False)
    assert torch.equal(again.fc1.weight, model.fc1.weight)  # the same seed gives the same model
    assert checkpoints.load_checkpoint(path)[1]["fingerprint"]  # and the cache entry is whole again


def _saved(tmp_path, **expect):
    data, config = small_data(), TrainConfig(**SMALL)
    model, _, path = train_dense(config, data, tmp_path, progress=False)
    return model, path, data


def test_corrupted_checkpoints_are_refused_with_the_fault(tmp_path):
    model, path, data = _saved(tmp_path)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(checkpoints.CheckpointError, match="truncated.pt cannot be read .* truncated or corrupted"):
        checkpoints.load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": model.state_dict()}, foreign)
    with pytest.raises(checkpoints.CheckpointError, match="not a checkpoint of this project"):
        checkpoints.load_checkpoint(foreign)
    tampered = tmp_path / "tampered.pt"
    ckpt = torch.load(path, weights_only=True)
    ckpt["state_dict"]["fc1.weight"][0, 0] += 1.0
    torch.save(ckpt, tampered)
    with pytest.raises(checkpoints.CheckpointError, match="differ from the fingerprint"):
        checkpoints.load_checkpoint(tampered)


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    model, path, data = _saved(tmp_path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["widths"] = (784, 1000, 1000, 500, 200, 10)  # says the study's network, holds a small one
    other = tmp_path / "other.pt"
    torch.save(ckpt, other)
    with pytest.raises(checkpoints.CheckpointError, match="do not fit the 784-1000-1000-500-200-10 network"):
        checkpoints.load_checkpoint(other)


def test_checkpoint_for_other_data_is_refused_naming_the_field(tmp_path):
    model, path, data = _saved(tmp_path)
    fashion = {**data, "test": Split(data["test"].images * 2, data["test"].labels)}
    with pytest.raises(checkpoints.CheckpointError, match="test_data: stored '[0-9a-f]{16}', asked for"):
        checkpoints.load_checkpoint(path, expect=checkpoints.data_expectation(fashion))
    with pytest.raises(checkpoints.CheckpointError, match="dataset: stored 'mnist', asked for 'fashion_mnist'"):
        checkpoints.load_checkpoint(path, expect={"dataset": "fashion_mnist"})
    assert checkpoints.load_checkpoint(path, expect=checkpoints.data_expectation(data))[1]["provenance"]["kind"] == "dense"


def test_a_missing_or_truncated_dense_model_names_the_notebook_that_writes_it(tmp_path):
    model, path, data = _saved(tmp_path / "cache")
    models = tmp_path / "models"
    with pytest.raises(FileNotFoundError, match=f"run 02_training with checkpoint_dir = '{models}' first"):
        checkpoints.load_dense(models, 0, data)
    dense = checkpoints.dense_checkpoint(models, 0)
    dense.parent.mkdir()
    dense.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(checkpoints.CheckpointError) as refused:
        checkpoints.load_dense(models, 0, data)
    message = str(refused.value)
    assert message == (f"{dense} cannot be read as a checkpoint: it is truncated or corrupted; delete it and rerun "
                       f"02_training with checkpoint_dir = '{models}'"), "the reader's own text is chained, not quoted"
    with pytest.raises(FileNotFoundError, match="none.pt: run the step that writes it first"):
        checkpoints.load_checkpoint(tmp_path / "none.pt")


def test_a_pruned_network_is_measured_with_its_sparsity(small_model):
    data = Split(torch.randn(40, 50), torch.randint(0, 10, (40,)))
    row = evaluate_pruned(weight_prune(small_model, 50), data)
    assert list(row) == ["loss", "accuracy", "sparsity", "nonzero_weights", "remaining_weights", "macs",
                         "sparsity_fc1", "sparsity_fc2", "sparsity_fc3", "sparsity_fc4"]
    assert row["macs"] == row["remaining_weights"]  # bias-free: one multiply-add per stored weight
    assert row["sparsity"] == pytest.approx(0.5) and row["sparsity_fc4"] == 0
    assert row["accuracy"] == evaluate(weight_prune(small_model, 50), data)["accuracy"]


def test_bf16_autocast_trains_float32_weights_and_a_bad_precision_is_refused(small_model):
    data = Split(torch.randn(64, 50), torch.randint(0, 10, (64,)))
    model = copy.deepcopy(small_model)
    history = train(model, data, {}, epochs=1, batch_size=16, lr=1e-3, seed=0, precision="bf16", progress=False)
    assert len(history) == 1 and all(p.dtype == torch.float32 for p in model.parameters())
    assert not torch.equal(model.fc1.weight, small_model.fc1.weight)
    with pytest.raises(ValueError, match=r"precision must be one of \['fp32', 'bf16'\], got 'fp16'"):
        train(model, data, {}, epochs=1, batch_size=16, lr=1e-3, seed=0, precision="fp16", progress=False)
