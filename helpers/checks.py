"""Argument checks shared by the modules, one range check for all: each returns the value, or
raises ``ValueError`` naming the argument, the value and the accepted range."""

from __future__ import annotations

import math
import numbers


def in_range(name: str, value: object, low: float, high: float = math.inf, *, integer: bool = False,
             low_open: bool = False, high_open: bool = False, accepted: str | None = None) -> float | int:
    """``value`` (an int when ``integer``, else a float) if it is a number (a bool is not), finite,
    and between ``low`` and ``high`` (each end included unless ``low_open``/``high_open``).
    ``ValueError`` otherwise, naming ``name``, the value and ``accepted`` (the range in words,
    written from the bounds when not given)."""
    kind = numbers.Integral if integer else numbers.Real
    if accepted is None:
        span = (f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}" if high < math.inf
                else f"{'>' if low_open else '>='} {low:g}")
        accepted = f"{'an integer' if integer else 'a finite number'} {'in ' if high < math.inf else ''}{span}"
    ok = isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (low < value if low_open else low <= value) and (value < high if high_open else value <= high)
    if not ok:
        raise ValueError(f"{name} must be {accepted}, got {value!r}")
    return int(value) if integer else float(value)


def positive_int(name: str, value: object) -> int:
    """``value`` as an int if it is an integer >= 1."""
    return in_range(name, value, 1, integer=True, accepted="a positive integer (>= 1)")


def non_negative_int(name: str, value: object) -> int:
    """``value`` as an int if it is an integer >= 0."""
    return in_range(name, value, 0, integer=True, accepted="a non-negative integer (>= 0)")


def positive_finite(name: str, value: object) -> float:
    """``value`` as a float if it is a finite number > 0."""
    return in_range(name, value, 0, low_open=True, accepted="a finite number > 0")
