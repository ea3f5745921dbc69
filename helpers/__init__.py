"""Helpers for the MNIST pruning report: data, model, training, pruning, measurement, plotting."""

__version__ = "0.1.0"
