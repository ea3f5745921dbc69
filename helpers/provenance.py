"""What produced an artefact: configuration, data, exact weights, package versions and machine.

Every checkpoint and every results file of the report carries a provenance record (a
plain dict). A cached artefact is reused only when its record equals the one the current
run asks for; otherwise it is refused or recomputed, and :func:`differences` says which
fields differ.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import importlib.util
import json
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .machine import stable_facts

VERSIONED = ("torch", "torchvision", "numpy", "pandas")
"""Packages whose versions can change the numbers of the report."""


def versions() -> dict[str, Any]:
    """Python's version and that of each package of :data:`VERSIONED` (with its build, e.g.
    ``2.14.1+cu130``: CPU and CUDA builds of one release may differ in the last bits), and the
    torch threads this process computes with (``torch_threads``), which change the last bits
    too (:data:`helpers.jobs.THREADS`)."""
    import torch  # a dependency of every process that computes; imported once

    return {"python": platform.python_version(), **{p: _version(p) for p in VERSIONED},
            "torch_threads": torch.get_num_threads()}


@functools.cache  # read once per process: a kernel records provenance hundreds of times
def _version(package: str) -> str:
    """``package.__version__``, without importing a package not imported yet when its build wrote
    the version as a literal in its ``version.py`` (torchvision: importing it imports
    ``torch._dynamo``, 2-3 s in every kernel that records provenance, though only a download
    needs torchvision)."""
    if package not in sys.modules:
        spec = importlib.util.find_spec(package)
        generated = Path(spec.origin).with_name("version.py") if spec and spec.origin else None
        if generated is not None and generated.is_file():
            for node in ast.parse(generated.read_text()).body:
                if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                        and [getattr(t, "id", None) for t in node.targets] == ["__version__"]):
                    return str(node.value.value)
    return str(importlib.import_module(package).__version__)


def machine() -> dict[str, Any]:
    """The machine the numbers were computed on: CPU, cores, operating system, torch's threads
    and BLAS (:func:`helpers.machine.stable_facts`)."""
    return stable_facts()


def digest(data: Any, length: int = 16) -> str:
    """SHA-256 (first ``length`` hex digits) of a JSON-serialisable value, key order ignored."""
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def state_fingerprint(state_dict: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 (16 hex digits) of a model's tensors: names, shapes, dtypes and exact values."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        h.update(tensor.numpy().tobytes())
    return h.hexdigest()[:16]


def _flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return out


def differences(stored: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """Fields of ``expected`` (nested keys joined by dots) whose value in ``stored`` differs,
    each as ``"field: stored X, asked for Y"``; empty when ``stored`` agrees."""
    have, want = _flatten(stored), _flatten(expected)
    return [f"{key}: stored {have.get(key, '(absent)')!r}, asked for {value!r}"
            for key, value in want.items() if have.get(key, "(absent)") != value]


def run_record(notebook: str, parameters: Mapping[str, Any], **inputs: Any) -> dict[str, Any]:
    """The provenance record of results written by ``notebook``: its ``parameters``, what it
    read (``inputs``, e.g. data and model fingerprints), package versions and machine. Where
    the jobs ran (``jobs``, ``scheduler``) is left out: it changes no result. The torch threads
    recorded (``torch_threads``, in both) are the notebook's ``threads`` parameter where it has
    one, since its jobs computed the results with that many, whatever the kernel's own count
    when the record is made; else the kernel's."""
    kept = {name: value for name, value in parameters.items() if name not in ("jobs", "scheduler")}
    threads = {"torch_threads": parameters["threads"]} if "threads" in parameters else {}
    return {"notebook": notebook, "parameters": kept, **inputs,
            "versions": {**versions(), **threads}, "machine": {**machine(), **threads}}


def require_same(records: Mapping[str, Mapping[str, Any]], fields: tuple[str, ...]) -> None:
    """Refuse records (label -> record) that disagree on any of ``fields``: results meant to be
    compared must come from the same data, models and versions. The error names the field and
    each label's value."""
    labels = list(records)
    for field in fields:
        values = {label: records[label].get(field) for label in labels}
        if len({json.dumps(v, sort_keys=True, default=str) for v in values.values()}) > 1:
            listed = "; ".join(f"{label}: {value!r}" for label, value in values.items())
            raise ValueError(f"results from different runs cannot be compared: they differ in {field} "
                             f"({listed}); rerun the notebooks that wrote them with the same configuration")
