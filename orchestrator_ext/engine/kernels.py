"""Pools of fresh, already started kernels: each serves one run and is then discarded.

Starting a kernel costs about half a second; the pool pays it ahead, in the
background, so a notebook run starts on a kernel that is ready. A kernel is
never reused: whatever a run leaves in its memory, files or environment dies
with it. Each kernel starts in its own directory, with the scrubbed
environment and the memory limit of :mod:`.isolation`.

With the ``zygote`` notebook engine (the default), python3 notebooks do not
take a kernel from this pool at all: each run is a child forked from the
organization's zygote (:mod:`.zygote`), an interpreter with IPython imported
and its shell built, started with the same command's interpreter, account,
environment and limits as a kernel; only other kernels' notebooks (and the
``kernel`` engine) start kernels.

Kernels start from a fixed command the operator chose (``run_kernels``: the
environment's own ipykernel by default), never from a kernelspec found on a
Jupyter path, which a run could have written; a notebook's kernel name only
selects among those commands. Where runs execute under accounts of their own
(:mod:`.accounts`), each organization has its own warm kernels, started as its
account, with the connection file and sockets in a directory only that
account (and the worker) can open; one organization's kernel is never handed
to another.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpec, NoSuchKernel
from jupyter_client.manager import AsyncKernelManager
from orchestrator_kernels.kernelspec import run_commands

from .accounts import RunAccount
from .isolation import child_setup, kill_group, new_workdir, remove_workdir, run_environment
from .pool import PerAccount, WarmPool
from .sweep import WATCH
from .zygote import Zygote, ZygoteKernel

log = logging.getLogger("orchestrator.engine")

DEFAULT_KERNEL = "python3"
#: how python3 notebooks run: forked from a warm interpreter, or on a kernel each (the previous engine)
NOTEBOOK_ENGINES = ("zygote", "kernel")
START_TIMEOUT = 30.0
#: the kernels runs may ask for by name, and the command each starts from
DEFAULT_COMMANDS: dict[str, list[str]] = {
    DEFAULT_KERNEL: [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
    # the framework kernels of the installed frameworks (orchestrator-langgraph, ...): notebooks written on them run
    **run_commands(),
}


class FixedKernelManager(AsyncKernelManager):
    """jupyter_client's manager with a kernelspec given, not looked up on the Jupyter paths, and its
    connection file handed to the account the kernel runs as."""

    def __init__(self, *, argv: list[str], account: RunAccount | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._kernel_spec = KernelSpec(argv=argv, display_name=self.kernel_name, language="python", env={})
        self.run_account = account

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        if self.run_account is not None:
            self.run_account.give(Path(self.connection_file))


@dataclass
class JupyterKernel:
    """A started kernel, its client and the directory it runs in."""

    manager: AsyncKernelManager
    client: AsyncKernelClient
    workdir: Path
    name: str
    #: a short folder linking to ``workdir``, where the kernel's sockets are addressed (:func:`socket_base`)
    link: Path | None = None

    @property
    def pid(self) -> int | None:
        provisioner = self.manager.provisioner
        return getattr(provisioner, "pid", None) if provisioner is not None else None

    def kill_now(self) -> None:
        """SIGKILL the kernel's whole process group (it runs in its own session): for cancel and timeout."""
        kill_group(self.pid)


async def start_kernel(
    name: str,
    memory_mib: int,
    workdir_root: Path | None,
    account: RunAccount | None = None,
    argv: list[str] | None = None,
) -> JupyterKernel:
    """Start one kernel, as ``account``, in a fresh directory of that account, and wait until it answers."""
    workdir = new_workdir(workdir_root, "run-", account)
    # Unix sockets in the run's own directory, not TCP ports: no race with other workers for free ports,
    # and nothing listening where other local users could connect
    base, link = socket_base(workdir)
    manager = FixedKernelManager(
        argv=argv or DEFAULT_COMMANDS[DEFAULT_KERNEL],
        account=account,
        kernel_name=name,
        transport="ipc",
        ip=str(base),
        connection_file=str(workdir / "kernel.json"),
    )
    try:
        with open(workdir / "kernel.log", "wb") as captured:  # noqa: ASYNC230 - a local, empty file
            await manager.start_kernel(
                env=run_environment(workdir),
                cwd=str(workdir),
                preexec_fn=child_setup,
                stdout=captured,
                stderr=captured,
                **(account.popen_kwargs() if account is not None else {}),
            )
        client = manager.client()
        client.start_channels()
        await client.wait_for_ready(timeout=START_TIMEOUT)
    except BaseException:
        with contextlib.suppress(Exception):
            await manager.shutdown_kernel(now=True)
        remove_workdir(workdir)
        remove_link(link)
        raise
    kernel = JupyterKernel(manager=manager, client=client, workdir=workdir, name=name, link=link)
    WATCH.own(kernel.pid, account)  # a worker that is pid 1 finds it among its children: not a stray (sweep.py)
    return kernel


#: the longest socket path ZeroMQ's ipc takes here: ``sun_path`` is 108 bytes with its NUL, less ``-NN``
MAX_SOCKET_BASE = 100


def socket_base(workdir: Path) -> tuple[Path, Path | None]:
    """Where the kernel's five ipc sockets are named (``<base>-1`` …): in ``workdir``, or, where that path is
    too long for a Unix socket address (a deep ``run_dir`` or ``TMPDIR``), through a link to it from a short
    folder of ours in /tmp (0711: others may pass through it, to ``workdir``'s own permissions, not list it)."""
    base = workdir / "k"
    if len(os.fsencode(base)) <= MAX_SOCKET_BASE:
        return base, None
    link = Path(tempfile.mkdtemp(prefix="orch-k-", dir="/tmp"))  # nosec B108 - mkdtemp makes a new folder of ours
    os.chmod(link, 0o711)  # noqa: S103  # nosec B103 - others pass through to the run folder (0700), not list
    (link / "w").symlink_to(workdir, target_is_directory=True)
    return link / "w" / "k", link


def remove_link(link: Path | None) -> None:
    if link is not None:
        remove_workdir(link)  # the link and its folder; rmtree does not follow the link


async def _alive(kernel: JupyterKernel) -> bool:
    return bool(kernel.manager.has_kernel and await kernel.manager.is_alive())


#: a run's kernel: a started Jupyter kernel, or a child of the notebook zygote (the same interface)
Kernel = JupyterKernel | ZygoteKernel


def zygote_python(argv: list[str]) -> str | None:
    """The interpreter of a kernel command ``<python> -m ipykernel_launcher ...``: the one a zygote runs.
    None for any other command (the operator's own launcher): its notebooks keep starting kernels."""
    if len(argv) >= 3 and argv[1:3] == ["-m", "ipykernel_launcher"]:
        return argv[0]
    return None


async def discard(kernel: Kernel) -> None:
    """Stop a used (or unused) kernel for good and remove its directory."""
    if isinstance(kernel, ZygoteKernel):
        await kernel.discard()
        return
    with contextlib.suppress(Exception):
        kernel.client.stop_channels()
    kernel.kill_now()
    with contextlib.suppress(Exception):
        await kernel.manager.shutdown_kernel(now=True)
    remove_workdir(kernel.workdir)
    remove_link(kernel.link)


class KernelPool:
    """``size`` warm kernels of the default kernel per organization (one pool without run accounts), or
    with the ``zygote`` engine a zygote per organization instead; other kernel names start on demand.

    :meth:`for_org` gives the pool as one run sees it: its :meth:`take` serves that run's organization
    only, as its account."""

    def __init__(
        self,
        size: int,
        memory_mib: int,
        workdir_root: Path | None = None,
        *,
        commands: dict[str, list[str]] | None = None,
        limit: int = 4,
        idle_seconds: float = 600.0,
        engine: str = "zygote",
    ) -> None:
        if engine not in NOTEBOOK_ENGINES:
            raise ValueError(f"notebook_engine '{engine}': use one of {', '.join(NOTEBOOK_ENGINES)}")
        self.size = size
        self.memory_mib = memory_mib
        self.workdir_root = workdir_root
        self.commands = dict(commands or DEFAULT_COMMANDS)
        self.accounts: dict[str | None, RunAccount | None] = {}
        self.pools: PerAccount[WarmPool[JupyterKernel]] = PerAccount(
            self._pool_for, WarmPool.close, limit=limit, idle_seconds=idle_seconds
        )
        #: the interpreter python3 notebooks are forked from (None: they start kernels)
        self.python = zygote_python(self._argv()) if engine == "zygote" else None
        self.zygotes: PerAccount[Zygote] = PerAccount(
            self._zygote_for,
            Zygote.close,
            busy=lambda zygote: zygote.in_flight > 0,
            limit=limit,
            idle_seconds=idle_seconds,
        )
        self._starting: dict[str | None, asyncio.Task[object]] = {}
        self.key: str | None = None

    def _zygote_for(self, key: str | None) -> Zygote:
        return Zygote(self.python or sys.executable, self.memory_mib, self.workdir_root, self.accounts.get(key))

    def _pool_for(self, key: str | None) -> WarmPool[JupyterKernel]:
        account = self.accounts.get(key)
        return WarmPool(
            self.size,
            start=lambda: start_kernel(DEFAULT_KERNEL, self.memory_mib, self.workdir_root, account, self._argv()),
            alive=_alive,
            discard=discard,
            what="kernel",
        )

    def _argv(self, name: str = DEFAULT_KERNEL) -> list[str]:
        if name not in self.commands:
            raise NoSuchKernel(name)
        return self.commands[name]

    def for_org(self, key: str | None, account: RunAccount | None) -> KernelPool:
        """This pool as the runs of ``key``'s organization see it (they run as ``account``)."""
        self.accounts[key] = account
        view = copy.copy(self)
        view.key = key
        return view

    def fill(self, key: str | None = None, account: RunAccount | None = None) -> None:
        """Start ``key``'s zygote, or its warm kernels up to ``size``, in the background."""
        self.accounts[key] = account
        if self.python is not None:
            starting = self._starting.get(key)
            if starting is None or starting.done():
                task: asyncio.Task[object] = asyncio.create_task(self._warm_zygote(self.zygotes.get(key)))
                task.add_done_callback(_report_start)
                self._starting[key] = task
        elif self.size > 0:
            self.pools.get(key).fill()

    @staticmethod
    async def _warm_zygote(zygote: Zygote) -> None:
        """The zygote started, and the next run's child forked ahead."""
        await zygote.ensure()
        await zygote.fork_ahead()

    def is_ready(self, key: str | None = None) -> bool:
        """Whether a python3 notebook of ``key``'s organization would start now without waiting for a
        process to start: its zygote is up (zygote engine), or a warm kernel is waiting (kernel engine).
        Cheap (no I/O): for a worker deciding whether to claim notebook runs."""
        if self.python is not None:
            zygote = self.zygotes.peek(key)
            return zygote is not None and zygote.ready()
        pool = self.pools.peek(key)
        return self.size <= 0 or (pool is not None and pool.ready > 0)

    async def take(self, name: str = DEFAULT_KERNEL) -> Kernel:
        """A fresh kernel named ``name`` for this view's organization: a child of its zygote for python3
        (zygote engine), else a warm kernel when there is one, else one started now. NoSuchKernel for a name
        the operator did not list."""
        argv = self._argv(name)
        if name == DEFAULT_KERNEL and self.python is not None:
            return await self.zygotes.get(self.key).fork(name)
        warm = self.pools.peek(self.key) if name == DEFAULT_KERNEL else None
        kernel = await warm.take_warm() if warm is not None else None
        return kernel or await self._start_now(name, argv)

    async def _start_now(self, name: str, argv: list[str]) -> JupyterKernel:
        """Start a kernel for a run waiting on it; one more try when the first does not come up."""
        account = self.accounts.get(self.key)
        try:
            return await start_kernel(name, self.memory_mib, self.workdir_root, account, argv)
        except (RuntimeError, TimeoutError):  # it died or did not answer
            log.warning("a kernel did not come up; starting another", exc_info=True)
            return await start_kernel(name, self.memory_mib, self.workdir_root, account, argv)

    async def close(self) -> None:
        for task in self._starting.values():
            task.cancel()
        await asyncio.gather(*self._starting.values(), return_exceptions=True)
        await asyncio.gather(self.pools.close(), self.zygotes.close())


def _report_start(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the notebook zygote failed to start", exc_info=task.exception())
