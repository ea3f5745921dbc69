"""The Jupyter kernels the pipeline runs notebooks in: on local sockets, each started while the notebook before it runs, and stopped at once when its notebook has run.

A notebook's first seconds go to starting its kernel and to its first cell's imports of torch,
pandas and matplotlib (about 1.5 and 5 s on the 2-core machine); ten notebooks one after
another spend a minute there. :class:`Ahead` starts the kernel of the next notebook that will
run in a thread, while the current one runs, and imports those packages in it silently (no
execution count, no history), so that the notebook's own imports find them loaded. Its
cells, their order and what they compute are unchanged: the packages are imported as they
would be by the first cell, before any code of the notebook runs.

Each kernel is a fork of one server per run that has imported ipykernel and torch once
(:data:`PRELOAD`, :class:`ForkedProvisioner`), as the study's workers are forks of theirs
(:data:`helpers.jobs.PRELOAD`): a kernel of its own interpreter spent about 4 CPU seconds on its
imports, 2.5 of them on these.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import multiprocessing
import os
import sys
import types
import uuid
from collections.abc import Hashable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import psutil
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from traitlets import default

from .jobs import forkserver
from .kernel import KERNEL_NAME, EncryptedLocalProvisioner

WARM = "import torch, pandas, matplotlib.pyplot, seaborn, scipy.special"
"""What a kernel started ahead imports before its notebook runs: the packages the notebooks'
first cells import, themselves or through :mod:`helpers`."""

STARTUP_SECONDS = 120
"""How long a kernel started ahead may take to answer and import :data:`WARM`."""


PRELOAD = ("ipykernel.kernelapp", "torch._dynamo", "scipy.stats")
"""What the server the pipeline's kernels are forked from imports, once per run: ipykernel,
torch (with ``torch._dynamo``, which the first optimiser a process builds imports) and scipy's
statistics, about 2.5 of the 4 CPU seconds a kernel of its own interpreter spends importing. Not
pandas, matplotlib, tqdm or :mod:`helpers` (which imports them): they look, when imported, at
whether they run in a kernel, to choose how to display tables, figures and progress."""


class ForkedKernel:
    """A kernel's process, forked from the server of :data:`PRELOAD` (a
    :class:`multiprocessing.Process`), with what :class:`~jupyter_client.provisioning.LocalProvisioner`
    uses of the :class:`subprocess.Popen` it would have started."""

    stdin = stdout = stderr = None

    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        self._process, self.pid = process, process.pid

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int | None:
        self._process.join(timeout)
        return self._process.exitcode

    def send_signal(self, signum: int) -> None:
        if self._process.exitcode is None:  # as Popen's: nothing once it has ended
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def kill(self) -> None:
        self._process.kill()

    def terminate(self) -> None:
        self._process.terminate()


def _forked_arguments(cmd: list[str]) -> list[str] | None:
    """The arguments of ipykernel in a kernel's command ``cmd``, if a fork of this process's
    server can run it as that command would: it runs ``ipykernel_launcher`` with this
    environment's Python, and the server imports :data:`PRELOAD` and nothing else (one that
    runs the study's workers imports pandas); else None."""
    if "-m" not in cmd or cmd[cmd.index("-m") + 1:cmd.index("-m") + 2] != ["ipykernel_launcher"]:
        return None
    if os.path.realpath(Path(cmd[0]).parent.parent) != os.path.realpath(sys.prefix):
        return None
    return cmd[cmd.index("-m") + 2:] if forkserver(PRELOAD)[1] else None


@contextlib.contextmanager
def _no_main_module() -> Iterator[None]:
    """While a process is started, hide this process's main module from :mod:`multiprocessing`,
    which would run it again in the new process before its target (``python -m helpers.pipeline``:
    pandas, tqdm and matplotlib imported before ipykernel starts, see :data:`PRELOAD`). A kernel
    needs none of it; nothing else of the pipeline reads ``__main__`` while a kernel starts."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _kernel(arguments: list[str], env: dict[str, str], cwd: str) -> None:  # in a fork of the server
    # a session of its own, as jupyter_client's launcher gives a kernel: stopping its process group
    # stops the kernel and its workers, and nothing of the pipeline's
    os.setsid()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    # multiprocessing's default, as in an interpreter of its own, not the forkserver it came from
    # (under which tqdm's lock would be a named semaphore that outlives a kernel stopped at once)
    multiprocessing.set_start_method(None, force=True)
    # what ipykernel_launcher does: its folder off the path while ipykernel loads (IPython puts it back)
    sys.argv = [importlib.util.find_spec("ipykernel_launcher").origin, *arguments]
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    # ipykernel read it from the environment when imported, in the server: the process whose end
    # ends the kernel (without one, the kernel prints how to stop it by hand)
    app.parent_handle = int(env["JPY_PARENT_PID"])
    app.initialize(arguments)
    app.start()


class ForkedProvisioner(EncryptedLocalProvisioner):
    """Starts a kernel of the project's kernelspec as a fork of a server that has imported
    :data:`PRELOAD` (:mod:`multiprocessing`'s forkserver, :func:`helpers.jobs.forkserver`), in its
    own session, with the environment and working folder it is given. A kernelspec that runs
    another Python, or a process whose server imports other modules (one that ran the study's
    workers first, which import pandas), starts it as jupyter_client does."""

    async def launch_kernel(self, cmd: list[str], **kwargs):
        arguments = _forked_arguments(cmd)
        if arguments is None:
            return await super().launch_kernel(cmd, **kwargs)
        env = {**(kwargs.get("env") or os.environ), "JPY_PARENT_PID": str(os.getpid())}  # as the launcher sets it
        self.cwd = str(kwargs.get("cwd") or os.getcwd())
        process = forkserver(PRELOAD)[0].Process(target=_kernel, args=(arguments, env, self.cwd), name="kernel")
        with _no_main_module():
            process.start()
        self.process = ForkedKernel(process)
        self.pid = self.pgid = process.pid  # its session's, once it has one: until then, signals go to it alone
        return self.connection_info


class LocalKernelManager(AsyncKernelManager):
    """Kernels reached through local sockets (IPC) rather than TCP on loopback: nothing listens
    on a port, and the kernel has no cause to warn that TCP traffic is unencrypted. Each starts
    through :class:`ForkedProvisioner`."""

    async def _async_pre_start_kernel(self, **kw):
        if self.provisioner is None:  # set, it is a restart's
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            self.provisioner = ForkedProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
        return await super()._async_pre_start_kernel(**kw)

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
