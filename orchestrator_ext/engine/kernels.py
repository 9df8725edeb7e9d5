"""A pool of fresh, already started kernels: each serves one run and is then discarded.

Starting a kernel costs about half a second; the pool pays it ahead, in the
background, so a notebook run starts on a kernel that is ready. A kernel is
never reused: whatever a run leaves in its memory, files or environment dies
with it. Each kernel starts in its own directory, with the scrubbed
environment and the memory limit of :mod:`.isolation`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager

from .isolation import limiter, new_workdir, remove_workdir, run_environment

log = logging.getLogger("orchestrator.engine")

DEFAULT_KERNEL = "python3"
START_TIMEOUT = 30.0


@dataclass
class Kernel:
    """A started kernel, its client and the directory it runs in."""

    manager: AsyncKernelManager
    client: AsyncKernelClient
    workdir: Path
    name: str

    @property
    def pid(self) -> int | None:
        provisioner = self.manager.provisioner
        return getattr(provisioner, "pid", None) if provisioner is not None else None

    def kill_now(self) -> None:
        """SIGKILL the kernel's whole process group (it runs in its own session): for cancel and timeout."""
        pid = self.pid
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


async def start_kernel(name: str, memory_mib: int, workdir_root: Path | None) -> Kernel:
    """Start one kernel in a fresh directory and wait until it answers."""
    workdir = new_workdir(workdir_root, "run-")
    # Unix sockets in the run's own directory, not TCP ports: no race with other workers for free ports,
    # and nothing listening where other local users could connect
    manager = AsyncKernelManager(
        kernel_name=name, transport="ipc", ip=str(workdir / "k"), connection_file=str(workdir / "kernel.json")
    )
    try:
        with open(workdir / "kernel.log", "wb") as captured:  # noqa: ASYNC230 - a local, empty file
            await manager.start_kernel(
                env=run_environment(workdir),
                cwd=str(workdir),
                preexec_fn=limiter(memory_mib),
                stdout=captured,
                stderr=captured,
            )
        client = manager.client()
        client.start_channels()
        await client.wait_for_ready(timeout=START_TIMEOUT)
    except BaseException:
        with contextlib.suppress(Exception):
            await manager.shutdown_kernel(now=True)
        remove_workdir(workdir)
        raise
    return Kernel(manager=manager, client=client, workdir=workdir, name=name)


async def discard(kernel: Kernel) -> None:
    """Stop a used (or unused) kernel for good and remove its directory."""
    with contextlib.suppress(Exception):
        kernel.client.stop_channels()
    kernel.kill_now()
    with contextlib.suppress(Exception):
        await kernel.manager.shutdown_kernel(now=True)
    remove_workdir(kernel.workdir)


class KernelPool:
    """``size`` warm kernels of the default kernel; other kernel names start on demand.

    The owner calls :meth:`fill` after each run has been recorded, not when it
    takes a kernel: starting one costs half a second of CPU, which would
    otherwise slow down the very run that took the last one.
    """

    def __init__(self, size: int, memory_mib: int, workdir_root: Path | None = None) -> None:
        self.size = size
        self.memory_mib = memory_mib
        self.workdir_root = workdir_root
        self._ready: asyncio.Queue[Kernel] = asyncio.Queue()
        self._starting = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def warm(self) -> int:
        return self._ready.qsize()

    def fill(self) -> None:
        """Start kernels in the background until ``size`` are ready or starting."""
        while not self._closed and self._ready.qsize() + self._starting < self.size:
            self._starting += 1
            task = asyncio.create_task(self._start_one())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _start_one(self) -> None:
        try:
            kernel = await start_kernel(DEFAULT_KERNEL, self.memory_mib, self.workdir_root)
        except Exception:
            log.exception("a warm kernel failed to start")
            await asyncio.sleep(1.0)  # do not spin on a broken kernel spec
            return
        finally:
            self._starting -= 1
        if self._closed:
            await discard(kernel)
        else:
            self._ready.put_nowait(kernel)

    async def take(self, name: str = DEFAULT_KERNEL) -> Kernel:
        """A fresh kernel named ``name``: a warm one when there is one, else one started now."""
        kernel: Kernel | None = None
        if name == DEFAULT_KERNEL:
            while kernel is None and not self._ready.empty():
                candidate = self._ready.get_nowait()
                if candidate.manager.has_kernel and await candidate.manager.is_alive():
                    kernel = candidate
                else:
                    await discard(candidate)
        if kernel is None:
            kernel = await self._start_now(name)
        return kernel

    async def _start_now(self, name: str) -> Kernel:
        """Start a kernel for a run waiting on it; one more try when the first does not come up."""
        try:
            return await start_kernel(name, self.memory_mib, self.workdir_root)
        except (RuntimeError, TimeoutError):  # it died or did not answer; NoSuchKernel is not retried
            log.warning("a kernel did not come up; starting another", exc_info=True)
            return await start_kernel(name, self.memory_mib, self.workdir_root)

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        while not self._ready.empty():
            await discard(self._ready.get_nowait())
