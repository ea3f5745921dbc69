"""The notebooks' parameters: what each notebook declares, and a check of the values a run gets.

Papermill injects whatever names it is given, after the cell tagged ``parameters``, and
would let a misspelt name pass unnoticed while the notebook runs with its default. Every
notebook therefore starts with :func:`check_namespace`, and :mod:`helpers.pipeline` calls
:func:`check` on every notebook's values before it runs the first one: an unknown name,
a value of the wrong type (against the annotation in the ``parameters`` cell, e.g.
``ks: list[float]``) or out of range stops the run before anything is written.
"""

from __future__ import annotations

import ast
import difflib
import numbers
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import nbformat

from .checks import positive_finite

SOURCE_DIR = Path(__file__).resolve().parents[1] / "notebooks"
"""The source notebooks, as kept in the repository (no outputs)."""

_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}
_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "None": None, "list": list}


def declared(notebook: str) -> dict[str, dict[str, str]]:
    """The parameters of source notebook ``notebook`` (e.g. ``"02_training"``): the assignments of
    its ``parameters`` cell, name -> ``default`` and ``annotation`` (source text; ``""`` if none).

    (``papermill.inspect_notebook`` reads the same cell with a regular expression that skips
    annotations such as ``int | None``; the cell is parsed as Python here.)
    """
    path = SOURCE_DIR / f"{notebook}.ipynb"
    if not path.is_file():
        accepted = sorted(p.stem for p in SOURCE_DIR.glob("[0-9][0-9]_*.ipynb"))
        raise ValueError(f"unknown notebook {notebook!r}; accepted: {accepted}")
    cells = [c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path} must have exactly one cell tagged 'parameters', it has {len(cells)}")
    params = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            params[node.target.id] = {"default": ast.unparse(node.value), "annotation": ast.unparse(node.annotation)}
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    params[target.id] = {"default": ast.unparse(node.value), "annotation": ""}
    return params


def _matches(value: Any, annotation: Any) -> bool:
    """Whether ``value`` is of the annotated type (an int is a float; a bool is not a number)."""
    if annotation is None or annotation is type(None):
        return value is None
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if annotation is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _positive_int(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")


def _optional_size(name: str, value: int | None) -> None:
    if value is not None:
        _positive_int(name, value)


def _fraction(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{name} must be a fraction in (0, 1), got {value!r}")


def _levels(name: str, value: list[float]) -> None:
    from .pruning import check_k

    for k in value:
        check_k(k)


def _validators() -> dict[str, Callable[[str, Any], None]]:
    """Parameter name -> range check, shared by every notebook that declares the name."""
    from .data import check_name
    from .sweep import check_ks, check_seeds, check_strategies

    return {
        "dataset": lambda _, v: check_name(v),
        "seeds": lambda _, v: check_seeds(v),
        "ks": lambda _, v: check_ks(v),
        "target_ks": _levels,
        "cutoff_ks": _levels,
        "shift_k": lambda n, v: _levels(n, [v]),
        "strategies": lambda _, v: check_strategies(v),
        **{n: _positive_int for n in ("epochs", "batch_size", "recovery_epochs", "recovery_batch_size",
                                      "target_epochs")},
        **{n: positive_finite for n in ("lr", "recovery_lr")},
        **{n: _optional_size for n in ("train_size", "test_size")},
        "tolerance": _fraction,
    }


def check(values: Mapping[str, Any], notebook: str) -> None:
    """Refuse ``values`` for ``notebook`` unless every name is one of its parameters, every value
    has the type annotated in its ``parameters`` cell and lies in the accepted range.

    Raises ``ValueError`` (``TypeError`` for a wrong type) naming the notebook, the parameter,
    the value and what is accepted; for an unknown name, also the closest declared one.
    """
    params = declared(notebook)
    unknown = [name for name in values if name not in params]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, params, n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(f"{notebook}: unknown parameter(s) {', '.join(hints)}; "
                         f"accepted: {', '.join(params)}")
    validators = _validators()
    for name, value in values.items():
        annotation = params[name]["annotation"]
        if annotation:
            expected = eval(annotation, {"__builtins__": {}}, _TYPES)  # annotations of our own notebooks
            if not _matches(value, expected):
                raise TypeError(f"{notebook}: parameter {name} must be {annotation}, got {value!r} "
                                f"({type(value).__name__}); with the papermill command line, pass lists "
                                f"and None with -y, e.g. -y '{name}: {params[name]['default']}'")
        if name in validators and value is not None:
            try:
                validators[name](name, value)
            except (TypeError, ValueError) as err:
                raise type(err)(f"{notebook}: parameter {name}: {err}") from err


def check_namespace(namespace: Mapping[str, Any], notebook: str) -> dict[str, Any]:
    """:func:`check` the parameters a running notebook holds in ``namespace`` (its ``globals()``),
    before anything else runs: the declared ones and any that papermill injected besides them.
    Returns the parameters' values, for the provenance of what the notebook writes.

    IPython's own names, private names, modules, classes and functions are not parameters.
    """
    values = {
        name: value for name, value in namespace.items()
        if not name.startswith("_") and name not in _IPYTHON_NAMES
        and not isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type))
    }
    check(values, notebook)
    return values
