"""The pipeline's kernels: forked from a server that has imported ipykernel and torch once, each
with what a kernel of its own interpreter would have (folder, environment, session, the packages
that look at whether they run in a kernel imported in it), and gone, with its workers, once stopped.

Each case runs in a process of its own, as the pipeline does: a process has one forkserver,
whose modules are those its first user asked for."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

from helpers import jobs, kernels

from .conftest import ROOT

IN_KERNEL = """
import multiprocessing, os, sys
import pandas as pd
print(os.getcwd(), os.environ["MARKER"], os.getpgid(0) == os.getpid(), pd.get_option("display.max_columns"),
      multiprocessing.get_start_method(), sys.modules["__main__"].__name__, sep="|")
"""


def run_in(manager, code: str) -> str:
    """What ``code`` prints in the kernel of ``manager``."""
    async def run() -> str:
        client, printed = manager.client(), []
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=60)
            reply = await client.execute_interactive(code, timeout=60, output_hook=lambda message: printed.append(
                message["content"].get("text", "")))
        finally:
            client.stop_channels()
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(printed)
    return asyncio.run(run())


def _group(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except OSError:
        return None


def start_one_kernel(folder: str) -> None:
    """What the test's own process runs: a kernel in ``folder``; prints what it saw as JSON."""
    manager = kernels.started({**os.environ, "MARKER": "given"}, Path(folder))
    try:
        kernel = psutil.Process(manager.provisioner.pid)
        parent = " ".join(kernel.parent().cmdline())
        printed = run_in(manager, IN_KERNEL).strip().split("|")
        group = [p for p in psutil.process_iter() if _group(p) == kernel.pid]
    finally:
        kernels.shut_down(manager)
    left = [p.pid for p in group if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    print(json.dumps({"forked": "forkserver" in parent, "printed": printed, "left": left}))


def test_a_kernel_is_forked_with_what_a_kernel_of_its_own_interpreter_would_have(tmp_path):
    ran = subprocess.run([sys.executable, "-c", "import sys; from tests.test_kernels import start_one_kernel; "
                          "start_one_kernel(sys.argv[1])", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert ran.returncode == 0, ran.stderr[-3000:]
    seen = json.loads(ran.stdout.strip().splitlines()[-1])
    fresh = subprocess.run([sys.executable, "-c", "import multiprocessing as m; print(m.get_start_method())"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert seen["forked"]
    # its folder and environment; a session of its own (stopping it stops nothing else); pandas
    # imported in the kernel (20 columns shown, not a terminal's width); multiprocessing's default
    # and IPython's main module, not those of the process it was forked from
    assert seen["printed"] == [str(tmp_path), "given", "True", "20", fresh, "__main__"]
    assert seen["left"] == [], "stopped, the kernel and its process group are gone"


def test_a_kernel_is_started_anew_when_a_fork_would_not_be_the_same(monkeypatch):
    mine = [os.path.join(sys.prefix, "bin", "python"), "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "c.json"]
    monkeypatch.setattr(jobs, "_SERVER_PRELOAD", kernels.PRELOAD)  # this process's server: the kernels'
    assert kernels._forked_arguments(mine) == ["-f", "c.json"]
    assert kernels._forked_arguments(["/opt/other/bin/python", *mine[1:]]) is None, "another Python"
    assert kernels._forked_arguments([mine[0], "-m", "another_launcher", "-f", "c.json"]) is None
    monkeypatch.setattr(jobs, "_SERVER_PRELOAD", jobs.PRELOAD)  # the workers': pandas imported before any kernel
    assert kernels._forked_arguments(mine) is None
