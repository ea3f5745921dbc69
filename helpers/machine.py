"""The machine numbers were computed on: CPU, instruction sets, cores, OS, torch's threads and BLAS."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
"""CPU flags that decide which kernels torch can use (read from ``/proc/cpuinfo``)."""


def machine_facts() -> dict[str, object]:
    """CPU model, the flags of :data:`ISA_FLAGS` it has, logical and available cores, OS, Python
    and torch versions, torch's thread count, the BLAS torch uses and the momentary load, as a
    JSON-ready dict."""
    cpu, flags = "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not cpu:
                cpu = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = value
    except OSError:
        pass
    cpu = cpu or platform.processor() or platform.machine()
    isa = [f for f in ISA_FLAGS if f in flags.split()]
    config = torch.__config__.show()
    blas = "mkl" if "BLAS_INFO=mkl" in config else ("openblas" if "openblas" in config.lower() else "other")
    return {
        "cpu": cpu,
        "cpu_flags": isa,
        "logical_cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_blas": blas,
        "mkl_available": torch.backends.mkl.is_available(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def stable_facts() -> dict[str, object]:
    """:func:`machine_facts` without what changes from one moment to the next (the load) or is
    recorded apart (versions): the machine as a provenance record names it."""
    facts = machine_facts()
    for volatile in ("load_average", "python", "torch_version"):
        facts.pop(volatile, None)
    return facts
