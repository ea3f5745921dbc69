"""Argument checks shared by the modules: each returns the value, or raises ``ValueError``
naming the argument, the value and the accepted range."""

from __future__ import annotations

import math
import numbers


def positive_int(name: str, value: object) -> int:
    """``value`` as an int if it is an integer >= 1 (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1), got {value!r}")
    return int(value)


def non_negative_int(name: str, value: object) -> int:
    """``value`` as an int if it is an integer >= 0 (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer (>= 0), got {value!r}")
    return int(value)


def positive_finite(name: str, value: object) -> float:
    """``value`` as a float if it is a finite number > 0 (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0 < value < math.inf):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)
