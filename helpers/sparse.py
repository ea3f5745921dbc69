"""Training weight-pruned layers on their kept weights only: linear layers whose weight is a CSR matrix with trainable values.

A weight-pruned layer at k = 99 % keeps 1 % of its weights; trained masked, it still pays for
all of them (a dense matrix multiply, then the mask). :class:`SparseLinear` stores only the kept
weights, as the values of a CSR matrix whose pattern is fixed, and computes forward and backward
on them alone: ``y = x Wᵀ`` and ``∂L/∂x = ∂L/∂y W`` as sparse-dense products, and the weights'
gradient only at the kept positions (:func:`torch.sparse.sampled_addmm`). The pruned weights do
not exist, so they stay zero without a mask, and Adam keeps moments for the kept weights only.
The arithmetic is that of masked training up to the order of summation.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn

from .compact import csr_tensor
from .model import MLP


class _CSRLinearFunction(torch.autograd.Function):
    """``y = x Wᵀ`` for the CSR weight of a :class:`SparseLinear`, differentiable in ``x`` and in
    the weight's values."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, values: torch.Tensor, layer: SparseLinear) -> torch.Tensor:
        ctx.save_for_backward(x, values)
        ctx.layer = layer
        return torch.sparse.mm(layer.csr(values), x.t()).t()

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):
        x, values = ctx.saved_tensors
        layer = ctx.layer
        grad_x = torch.sparse.mm(layer.csr_transposed(values), grad_y.t()).t() if ctx.needs_input_grad[0] else None
        # the weights' gradient grad_yᵀ x, computed at the kept positions only
        grad_values = torch.sparse.sampled_addmm(layer.csr(torch.zeros_like(values)), grad_y.t().contiguous(), x,
                                                 beta=0.0).values()
        return grad_x, grad_values, None


class SparseLinear(nn.Module):
    """A bias-free linear layer whose weight (``out x in``) keeps only the non-zero entries of
    the ``weight`` it is made from, as trainable ``values`` in CSR order (row by row); the
    pattern never changes. :meth:`dense_weight` gives the weight back as a dense matrix."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        weight = weight.detach()
        self.shape = tuple(weight.shape)
        rows, cols = weight.nonzero(as_tuple=True)  # row-major: CSR order
        self.values = nn.Parameter(weight[rows, cols].clone())
        counts = torch.bincount(rows, minlength=self.shape[0])
        self.register_buffer("crow", torch.cat([counts.new_zeros(1), counts.cumsum(0)]))
        self.register_buffer("rows", rows)
        self.register_buffer("cols", cols)
        # the same entries in column-major order: the CSR form of the transpose, for ∂L/∂x
        order = torch.argsort(cols * self.shape[0] + rows)
        counts_t = torch.bincount(cols, minlength=self.shape[1])
        self.register_buffer("order_t", order)
        self.register_buffer("crow_t", torch.cat([counts_t.new_zeros(1), counts_t.cumsum(0)]))
        self.register_buffer("cols_t", rows[order])

    def csr(self, values: torch.Tensor) -> torch.Tensor:
        """The weight with ``values`` at the kept positions, as a CSR matrix."""
        return csr_tensor(self.crow, self.cols, values, self.shape, check_invariants=False)  # valid by construction

    def csr_transposed(self, values: torch.Tensor) -> torch.Tensor:
        """The transpose of :meth:`csr` (``in x out``), as a CSR matrix."""
        return csr_tensor(self.crow_t, self.cols_t, values[self.order_t], self.shape[::-1], check_invariants=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _CSRLinearFunction.apply(x, self.values, self)

    def dense_weight(self) -> torch.Tensor:
        """The weight as a dense ``out x in`` matrix, zero where nothing is kept."""
        weight = self.values.new_zeros(self.shape)
        weight[self.rows, self.cols] = self.values.detach()
        return weight


def with_sparse_layers(model: MLP, names: Iterable[str]) -> MLP:
    """A deep copy of ``model`` whose layers ``names`` are :class:`SparseLinear` made from their
    weights; the other layers stay ``nn.Linear``."""
    sparse = copy.deepcopy(model)
    for name in names:
        setattr(sparse, name, SparseLinear(getattr(model, name).weight))
    return sparse


def without_sparse_layers(model: MLP) -> MLP:
    """The inverse of :func:`with_sparse_layers`: a deep copy of ``model`` with every
    :class:`SparseLinear` turned back into a bias-free ``nn.Linear`` holding its dense weight."""
    dense = copy.deepcopy(model)
    for name in model.layer_names:
        layer = getattr(model, name)
        if isinstance(layer, SparseLinear):
            linear = nn.Linear(layer.shape[1], layer.shape[0], bias=False).to(layer.values.device)
            with torch.no_grad():
                linear.weight.copy_(layer.dense_weight())
            setattr(dense, name, linear)
    return dense

