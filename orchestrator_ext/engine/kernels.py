"""A pool of fresh, already started kernels: each serves one run and is then discarded.

Starting a kernel costs about half a second; the pool pays it ahead, in the
background, so a notebook run starts on a kernel that is ready. A kernel is
never reused: whatever a run leaves in its memory, files or environment dies
with it. Each kernel starts in its own directory, with the scrubbed
environment and the memory limit of :mod:`.isolation`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager

from .isolation import limiter, new_workdir, remove_workdir, run_environment
from .pool import WarmPool

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


async def _alive(kernel: Kernel) -> bool:
    return bool(kernel.manager.has_kernel and await kernel.manager.is_alive())


async def discard(kernel: Kernel) -> None:
    """Stop a used (or unused) kernel for good and remove its directory."""
    with contextlib.suppress(Exception):
        kernel.client.stop_channels()
    kernel.kill_now()
    with contextlib.suppress(Exception):
        await kernel.manager.shutdown_kernel(now=True)
    remove_workdir(kernel.workdir)


class KernelPool(WarmPool[Kernel]):
    """``size`` warm kernels of the default kernel; other kernel names start on demand."""

    def __init__(self, size: int, memory_mib: int, workdir_root: Path | None = None) -> None:
        self.memory_mib = memory_mib
        self.workdir_root = workdir_root
        super().__init__(
            size,
            start=lambda: start_kernel(DEFAULT_KERNEL, memory_mib, workdir_root),
            alive=_alive,
            discard=discard,
            what="kernel",
        )

    async def take(self, name: str = DEFAULT_KERNEL) -> Kernel:
        """A fresh kernel named ``name``: a warm one when there is one, else one started now."""
        kernel = await self.take_warm() if name == DEFAULT_KERNEL else None
        return kernel or await self._start_now(name)

    async def _start_now(self, name: str) -> Kernel:
        """Start a kernel for a run waiting on it; one more try when the first does not come up."""
        try:
            return await start_kernel(name, self.memory_mib, self.workdir_root)
        except (RuntimeError, TimeoutError):  # it died or did not answer; NoSuchKernel is not retried
            log.warning("a kernel did not come up; starting another", exc_info=True)
            return await start_kernel(name, self.memory_mib, self.workdir_root)
