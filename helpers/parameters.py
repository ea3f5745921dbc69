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
import json
import numbers
import re
import tempfile
import tokenize
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

from . import io
from .checks import in_range, positive_finite
from .pruning import check_k
from .retraining import MAX_RETRAINING_EPOCHS
from .sources import DATASETS, check_name
from .strategies import LAYER, RANKINGS, STRATEGIES

SOURCE_DIR = Path(__file__).resolve().parents[1] / "notebooks"
"""The source notebooks, as kept in the repository (no outputs)."""

_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}
_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "None": None, "list": list, "Optional": typing.Optional}


def declared(notebook: str) -> dict[str, dict[str, str]]:
    """The parameters of source notebook ``notebook`` (e.g. ``"02_training"``): the assignments of
    its ``parameters`` cell, name -> ``default`` and ``annotation`` (source text; ``""`` if none)
    and ``help``, the comment on its line (what ``papermill --help-notebook`` shows): what it is,
    what it accepts (:data:`VALIDATORS`), and for a file or folder the notebook reads or writes,
    ``"read: ..."``, ``"written: ..."`` or ``"cache: ..."`` first (:func:`prepare_outputs`).

    Optional values are annotated ``"Optional[int]"``, quoted: papermill's parser (a regular
    expression) reads no ``int | None``, and the notebook has no ``typing`` import.
    """
    path = SOURCE_DIR / f"{notebook}.ipynb"
    if not path.is_file():
        accepted = sorted(p.stem for p in SOURCE_DIR.glob("[0-9][0-9]_*.ipynb"))
        raise ValueError(f"unknown notebook {notebook!r}; accepted: {accepted}")
    # plain JSON: nbformat's schema validation costs every kernel seconds of imports
    cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
             if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path} must have exactly one cell tagged 'parameters', it has {len(cells)}")
    source = cells[0]["source"]
    source = source if isinstance(source, str) else "".join(source)
    comments = {token.start[0]: token.string.lstrip("#").strip()
                for token in tokenize.generate_tokens(StringIO(source).readline)
                if token.type == tokenize.COMMENT}
    params = {}
    for node in ast.parse(source).body:
        help_text = comments.get(node.end_lineno, "")
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            annotation = node.annotation  # quoted ("Optional[int]") where papermill's parser needs it
            text = annotation.value if isinstance(annotation, ast.Constant) else ast.unparse(annotation)
            params[node.target.id] = {"default": ast.unparse(node.value), "annotation": text, "help": help_text}
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    params[target.id] = {"default": ast.unparse(node.value), "annotation": "", "help": help_text}
    return params


def prepare_outputs(values: Mapping[str, Any], notebook: str) -> list[Path]:
    """Check, before any compute, that the files and folders ``notebook`` writes (their help starts
    with ``"written:"``; a name ending in ``_dir`` is a folder) and its cache (``"cache:"``), as
    ``values`` names them, can be written: a file can be created in the folder, or in the nearest
    folder above it that exists (which is left as it was: folders are made when the first file
    is written). Returns the written paths (files, and folders for ``*_dir``), e.g. for
    :func:`helpers.io.undo_on_failure`.

    Raises ``ValueError`` naming the parameter, its value and why it cannot be written.
    """
    params = declared(notebook)
    outputs = []
    for name in [n for n, p in params.items() if p["help"].startswith(("written:", "cache:"))]:
        if values.get(name) is None:
            continue
        path = Path(values[name]).absolute()
        folder = path if name.endswith("_dir") else path.parent
        existing = next(f for f in (folder, *folder.parents) if f.exists())
        try:
            if not existing.is_dir():
                raise NotADirectoryError(20, f"{existing} is a file, not a folder")
            with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-check-"):
                pass
        except OSError as err:
            raise ValueError(f"{notebook}: parameter {name}: {values[name]!r} cannot be written ({err.strerror}"
                             f"{': ' + str(existing) if existing != folder else ''}); give a path in a folder this "
                             f"user can write") from err
        if params[name]["help"].startswith("written:"):
            outputs.append(path)
    return outputs


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


def _positive_int(name: str, value: int) -> int:
    return in_range(name, value, 1, integer=True)


def _retraining_epochs(name: str, value: int) -> int:
    # checked here, at the notebook's boundary, against the bound helpers.retraining.Budget holds
    return in_range(name, value, 1, MAX_RETRAINING_EPOCHS, integer=True,
                    accepted=f"an integer in [1, {MAX_RETRAINING_EPOCHS}] (epochs of one retraining budget)")


def _optional_size(name: str, value: int | None) -> int | None:
    return None if value is None else _positive_int(name, value)


def _address(name: str, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError(f"{name} must be a Dask scheduler's address (such as tcp://host:8786) or None, got {value!r}")
    return value


def _fraction(name: str, value: float) -> float:
    return in_range(name, value, 0, 1, low_open=True, high_open=True, accepted="a fraction in (0, 1)")


def check_ks(ks: Iterable[float]) -> list[float]:
    """Validate a non-empty collection of sparsity levels (each 0 <= k < 100, in percent).

    Levels are normalised, not refused, when unsorted or repeated: the result is sorted in
    increasing order without repeats, as floats, so ``[90, 50, 90]`` gives ``[50.0, 90.0]``.
    """
    if isinstance(ks, (str, bytes)) or not isinstance(ks, Iterable):
        raise TypeError(f"ks must be a list of percentages in [0, 100), got {ks!r}")
    ks = sorted({check_k(k) for k in ks})
    if not ks:
        raise ValueError("ks must hold at least one sparsity level in [0, 100), got none")
    return ks


def _study_levels(name: str, value: list[float]) -> list[float]:
    """The levels of a pruning notebook's sweep, normalised (:func:`check_ks`), level 0 added when
    missing: the dense network is what every plot, table and conclusion measures the others against."""
    return check_ks([0.0, *check_ks(value)])


def _levels(name: str, value: list[float]) -> list[float]:
    """A list of levels that may be empty (nothing chosen), normalised as :func:`check_ks` does."""
    return check_ks(value) if value else []


def _learning_rates(name: str, value: list[float]) -> list[float]:
    """A non-empty list of learning rates in (0, 1], sorted, each once."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) or not list(value):
        raise ValueError(f"{name} must be a non-empty list of learning rates in (0, 1], got {value!r}")
    accepted = "a non-empty list of learning rates in (0, 1]"
    try:
        return sorted({in_range(name, v, 0, 1, low_open=True, accepted=accepted) for v in value})
    except ValueError:
        raise ValueError(f"{name} must be {accepted}, got {value!r}") from None


def check_seeds(seeds: Iterable[int]) -> list[int]:
    """Validate a non-empty list of distinct non-negative integer seeds; their order is kept."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise TypeError(f"seeds must be a list of non-negative integers, got {seeds!r}")
    seeds = list(seeds)
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0]
    if bad or not seeds:
        raise ValueError(f"seeds must be a non-empty list of integers >= 0, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must not repeat (a repeat would count one model twice), got {seeds}")
    return [int(s) for s in seeds]


def check_strategies(strategies: Iterable[str]) -> list[str]:
    """Validate strategy names against :data:`helpers.strategies.STRATEGIES`; their order is kept,
    each once."""
    strategies = [strategies] if isinstance(strategies, str) else list(strategies)
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise ValueError(f"unknown strategy {unknown or strategies!r}: strategies must be a non-empty "
                         f"subset of {list(STRATEGIES)}")
    return list(dict.fromkeys(strategies))


def _rankings(rankings: Iterable[str]) -> list[str]:
    """Names of rankings set beside the per-layer one, each once, in the order given."""
    unknown = [r for r in rankings if r not in RANKINGS or r == LAYER.name]
    if unknown:
        raise ValueError(f"unknown ranking {unknown!r}: rankings must name others than {LAYER.name!r} among "
                         f"{list(RANKINGS)} (the per-layer ranking always runs)")
    return list(dict.fromkeys(rankings))


@dataclass(frozen=True)
class Accepts:
    """What one parameter accepts: the phrase its help states (``text``, which every notebook's
    ``parameters`` cell repeats in the parameter's comment, tested; no ``=`` in it, which
    papermill's parser would take for a second assignment and skip the line) and the check that
    enforces it, returning the normalised value or raising ``ValueError`` naming the value."""

    text: str
    check: Callable[[str, Any], Any]


_LEVELS = Accepts("levels in [0, 100)", _levels)
VALIDATORS: dict[str, Accepts] = {
    "dataset": Accepts(" or ".join(DATASETS), lambda _, v: (check_name(v), v)[1]),
    "seeds": Accepts("distinct integers, at least 0", lambda _, v: check_seeds(v)),
    "ks": Accepts("levels in [0, 100); 0, the dense network, is always added", _study_levels),
    "target_ks": Accepts("levels of ks", _levels),
    "tune_ks": _LEVELS,
    "control_ks": _LEVELS,
    "cutoff_ks": _LEVELS,
    "tune_lrs": Accepts("rates in (0, 1]", _learning_rates),
    "control_lrs": Accepts("rates in (0, 1]", _learning_rates),
    "shift_k": Accepts("a level in [0, 100)", lambda _, v: check_k(v)),
    "csr_from_k": Accepts("a level in [0, 100)", lambda _, v: check_k(v)),
    "strategies": Accepts(f"any of {', '.join(STRATEGIES)}", lambda _, v: check_strategies(v)),
    "rankings": Accepts(f"any of {', '.join(r for r in RANKINGS if r != LAYER.name)}", lambda _, v: _rankings(v)),
    "ranking_ks": _LEVELS,
    **{n: Accepts("at least 1", _positive_int)
       for n in ("epochs", "batch_size", "recovery_batch_size")},
    "validation_size": Accepts("at least 1 and fewer than the training images", _optional_size),
    **{n: Accepts(f"in [1, {MAX_RETRAINING_EPOCHS}]", _retraining_epochs)
       for n in ("recovery_epochs", "target_epochs", "longest_epochs")},
    # the papers' 20 % where the compute allows; more than 40 % per round is no longer iterative
    "imp_rate": Accepts("a fraction in (0, 0.4]", lambda n, v: in_range(
        n, v, 0, 0.4, low_open=True, accepted="a fraction in (0, 0.4] (the papers prune 20 % per round)")),
    "lr": Accepts("above 0", positive_finite),
    **{n: Accepts("at least 1, or None", _optional_size) for n in ("train_size", "test_size", "sweep_seeds")},
    "tolerance": Accepts("in (0, 1)", _fraction),
    "jobs": Accepts("at least 1, or None", _optional_size),
    "threads": Accepts("at least 1", _positive_int),
    "scheduler": Accepts("an address such as tcp://host:8786, or None", _address),
}
"""Parameter name -> what it accepts and the range check returning the normalised value, shared
by every notebook that declares the name."""


def _cross_checks(values: Mapping[str, Any], notebook: str) -> None:
    """Refuse parameters that are each in range but do not fit together (``values`` complete
    and normalised): every level of ``target_ks`` must be one of ``ks``, which the longer
    budgets are set beside."""
    if values.get("target_ks") and "ks" in values:
        outside = [k for k in values["target_ks"] if k not in values["ks"]]
        if outside:
            raise ValueError(f"{notebook}: parameter target_ks: {outside} not among ks {values['ks']}: the longer "
                             f"budgets are compared with the sweep's at the same levels; add them to ks or leave "
                             f"them out of target_ks")


def _yaml_hint(value: Any) -> str:
    """Why a number came as text, when it did: YAML 1.1, which papermill's -y reads, takes
    ``1e-3`` (no dot) for a string."""
    items = value if isinstance(value, list) else [value]
    texts = [v for v in items if isinstance(v, str) and re.fullmatch(r"[-+]?\d+[eE][-+]?\d+", v)]
    return (f" ({texts[0]} is text to YAML, which wants a dot in an exponent: write {float(texts[0])!r} "
            f"or {texts[0].replace('e', '.0e').replace('E', '.0E')})") if texts else ""


def check(values: Mapping[str, Any], notebook: str) -> dict[str, Any]:
    """Refuse ``values`` for ``notebook`` unless every name is one of its parameters, every value
    has the type annotated in its ``parameters`` cell and lies in the accepted range; return
    them normalised (levels sorted, each once, as floats: :func:`check_ks`; ``ks`` with level 0).
    Parameters that must fit together are checked together, a missing one at its default.

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
    normalised = {}
    for name, value in values.items():
        annotation = params[name]["annotation"]
        if annotation:
            expected = eval(annotation, {"__builtins__": {}}, _TYPES)  # annotations of our own notebooks
            if not _matches(value, expected):
                raise TypeError(f"{notebook}: parameter {name} must be {annotation}, got {value!r} "
                                f"({type(value).__name__}); with the papermill command line, pass lists "
                                f"and None with -y, e.g. -y '{name}: {params[name]['default']}'"
                                + _yaml_hint(value))
        normalised[name] = value
        if name in VALIDATORS and value is not None:
            try:
                normalised[name] = VALIDATORS[name].check(name, value)
            except (TypeError, ValueError) as err:
                raise type(err)(f"{notebook}: parameter {name}: {err}") from err
    defaults = {name: ast.literal_eval(p["default"]) for name, p in params.items() if name not in normalised}
    _cross_checks({**{n: VALIDATORS[n].check(n, v) if n in VALIDATORS and v is not None else v
                      for n, v in defaults.items()}, **normalised}, notebook)
    return normalised


def check_namespace(namespace: Mapping[str, Any], notebook: str) -> dict[str, Any]:
    """:func:`check` the parameters a running notebook holds in ``namespace`` (its ``globals()``),
    before anything else runs: the declared ones and any that papermill injected besides them.
    Returns the parameters' values normalised (:func:`check`): what the notebook computes with,
    and what the provenance of its results records.

    The folders of the files it writes are created and checked writable
    (:func:`prepare_outputs`), and should a later cell fail, the files written there by this
    run are removed (:func:`helpers.io.undo_on_failure`): a failed run leaves no result behind.

    IPython's own names, private names, modules, classes and functions are not parameters.
    """
    values = {
        name: value for name, value in namespace.items()
        if not name.startswith("_") and name not in _IPYTHON_NAMES
        and not isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type))
    }
    checked = check(values, notebook)
    io.undo_on_failure(prepare_outputs(checked, notebook))
    return checked
