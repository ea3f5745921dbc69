"""The study's network: a bias-free ReLU multilayer perceptron."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

STUDY_HIDDEN: tuple[int, ...] = (1000, 1000, 500, 200)
"""Hidden widths of the study's network, 784 -> 1000 -> 1000 -> 500 -> 200 -> 10."""


class MLP(nn.Module):
    """ReLU perceptron with bias-free linear layers ``fc1 .. fcN``; ``fcN`` gives the logits.

    Input of any shape (N, ...) is flattened to (N, in_features).
    """

    def __init__(
        self,
        hidden: Sequence[int] = STUDY_HIDDEN,
        in_features: int = 784,
        n_classes: int = 10,
    ) -> None:
        super().__init__()
        widths = [in_features, *hidden, n_classes]
        if any(int(w) != w or w < 1 for w in widths):
            raise ValueError(f"layer widths must be positive integers, got {widths}")
        self.widths = tuple(int(w) for w in widths)
        self.layer_names: tuple[str, ...] = tuple(f"fc{i}" for i in range(1, len(widths)))
        for name, n_in, n_out in zip(self.layer_names, widths[:-1], widths[1:]):
            self.add_module(name, nn.Linear(n_in, n_out, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        *hidden, last = (getattr(self, n) for n in self.layer_names)
        for layer in hidden:
            x = torch.relu(layer(x))
        return last(x)


def linear_layers(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """All ``nn.Linear`` sub-modules of ``model`` with their names, in module order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
