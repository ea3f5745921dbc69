"""The Jupyter kernels the pipeline runs notebooks in: on local sockets, each started while the notebook before it runs, and stopped at once when its notebook has run.

A notebook's first seconds go to starting its kernel and to its first cell's imports of torch,
pandas and matplotlib (about 1.5 and 5 s on the 2-core machine); ten notebooks one after
another spend a minute there. :class:`Ahead` starts the kernel of the next notebook that will
run in a thread, while the current one runs, and imports those packages in it silently (no
execution count, no history), so that the notebook's own imports find them loaded. Its
cells, their order and what they compute are unchanged: the packages are imported as they
would be by the first cell, before any code of the notebook runs.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Hashable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import psutil
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from traitlets import default

from .kernel import KERNEL_NAME

WARM = "import torch, pandas, matplotlib.pyplot, seaborn, scipy.special"
"""What a kernel started ahead imports before its notebook runs: the packages the notebooks'
first cells import, themselves or through :mod:`helpers`."""

STARTUP_SECONDS = 120
"""How long a kernel started ahead may take to answer and import :data:`WARM`."""


class LocalKernelManager(AsyncKernelManager):
    """Kernels reached through local sockets (IPC) rather than TCP on loopback: nothing listens
    on a port, and the kernel has no cause to warn that TCP traffic is unencrypted."""

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    @default("ip")
    def _default_ip(self) -> str:
        # sockets of this kernel's own: jupyter_client's default path, "kernel-ipc" in the
        # working directory, is shared by kernels started at once from one folder, which then
        # answer each other's messages ("Invalid Signature"); the folder is missing on a new machine
        runtime = jupyter_runtime_dir()
        os.makedirs(runtime, exist_ok=True)
        return os.path.join(runtime, f"kernel-{uuid.uuid4().hex}-ipc")


def started(env: Mapping[str, str], cwd: Path) -> LocalKernelManager:
    """A kernel of the project's kernelspec, started in ``cwd`` with environment ``env``, that
    has imported :data:`WARM`; blocks until it has."""
    manager = LocalKernelManager(kernel_name=KERNEL_NAME)

    async def start() -> None:
        await manager.start_kernel(cwd=str(cwd), env=dict(env))
        client = manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=STARTUP_SECONDS)
            request = client.execute(WARM, silent=True, store_history=False)
            while (await client.get_shell_msg(timeout=STARTUP_SECONDS))["parent_header"].get("msg_id") != request:
                pass
        finally:
            client.stop_channels()
    try:
        asyncio.run(start())
    except BaseException:
        shut_down(manager)
        raise
    return manager


def shut_down(manager: LocalKernelManager) -> None:
    """Stop the kernel of ``manager`` (and its process) at once, if it runs.

    Its notebook has run, or never will: what the notebook wrote is written (atomically) and
    papermill holds its outputs. A graceful stop would have the kernel's interpreter tear down
    torch, pandas and matplotlib, about 2 s of wall and CPU time per notebook, for nothing
    (the "immediate" shutdown nbclient offers)."""
    async def stop() -> None:
        if manager.has_kernel:
            await manager.shutdown_kernel(now=True)
    asyncio.run(stop())


def cpu_seconds(manager: LocalKernelManager) -> float:
    """CPU seconds (user + system) the kernel process of ``manager`` has used so far, with those of
    its descendants: the children it has waited for, and those still running (the server its
    notebook's workers were forked from, :data:`helpers.jobs.PRELOAD`), each with its own waited-for
    children (the workers, stopped with their pool)."""
    return _tree_cpu_seconds(psutil.Process(manager.provisioner.pid))


def _tree_cpu_seconds(process: psutil.Process) -> float:
    # a child is in its parent's children_* times once waited for, and then no longer listed
    try:
        used, children = process.cpu_times(), process.children()
    except psutil.NoSuchProcess:  # a worker that ended after its parent listed it
        return 0.0
    return used.user + used.system + used.children_user + used.children_system + sum(
        _tree_cpu_seconds(child) for child in children)


class Ahead:
    """Kernels started ahead of the notebooks that will run in them, one at a time, in a
    thread: :meth:`start` begins one for a notebook, :meth:`take` hands it over (the caller
    then shuts it down), :meth:`close` shuts down every kernel not taken."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="kernel-ahead")
        self._pending: dict[Hashable, Future] = {}

    def start(self, notebook: Hashable, env: Mapping[str, str], cwd: Path) -> None:
        """Start the kernel ``notebook`` will run in, with environment ``env`` in ``cwd``."""
        self.discard(notebook)
        self._pending[notebook] = self._thread.submit(started, dict(env), cwd)

    def take(self, notebook: Hashable) -> LocalKernelManager | None:
        """The kernel started for ``notebook``, once ready; None if none was, or it failed to
        start (the notebook then starts its own, and says why if it fails too)."""
        future = self._pending.pop(notebook, None)
        try:
            return future.result() if future is not None else None
        except Exception:  # noqa: BLE001 - a kernel that did not start ahead starts with its notebook
            return None

    def discard(self, notebook: Hashable) -> None:
        """Shut down the kernel started for ``notebook``, if any (it will not run after all)."""
        manager = self.take(notebook)
        if manager is not None:
            shut_down(manager)

    def close(self) -> None:
        for notebook in list(self._pending):
            self.discard(notebook)
        self._thread.shutdown()
