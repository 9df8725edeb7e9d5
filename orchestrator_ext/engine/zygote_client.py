"""Cells executed on a zygote child, through nbclient's own output handling; papermill's ``zygote`` engine.

:class:`ZygoteNotebookClient` is papermill's notebook client with one method
replaced: ``async_execute_cell`` sends the cell to a :class:`.zygote.ZygoteKernel`
instead of a ZeroMQ kernel client. Every message the child answers goes
through nbclient's ``process_message`` (outputs, ``clear_output``, display ids,
execution counts, timings) and the reply through ``_check_raise_for_error``,
so an executed notebook, and a failing cell's ``CellExecutionError``, are what
nbclient makes of a kernel's messages.

:class:`ZygoteEngine` plugs that into papermill's engine registry (entry point
``papermill.engines: zygote``): ``papermill.execute_notebook(...,
engine_name="zygote")`` and ``papermill --engine zygote`` parameterize, record
and write the output notebook as usual, and run python3 notebooks on a fork of
a zygote this process keeps (started on first use, killed when the process
exits); notebooks for other kernels run on papermill's nbclient engine.
"""

from __future__ import annotations

import asyncio
import atexit
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbclient.util import run_hook, run_sync
from nbformat import NotebookNode
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import Engine, NBClientEngine
from papermill.utils import merge_kwargs, remove_args

from .zygote import Zygote, ZygoteGone, ZygoteKernel

#: the kernel names the zygote serves: the IPython kernel's
PYTHON_KERNELS = frozenset({"python3", "python"})


class ZygoteNotebookClient(PapermillNotebookClient):  # type: ignore[misc]
    """papermill's client, executing each cell on ``kernel`` (a forked child) instead of a kernel client."""

    def __init__(self, nb_man: Any, kernel: ZygoteKernel, **kwargs: Any) -> None:
        super().__init__(nb_man, km=None, kernel_name=kernel.name, **kwargs)
        self.zygote_kernel = kernel

    async def async_execute_cell(
        self, cell: NotebookNode, cell_index: int, execution_count: int | None = None, store_history: bool = True
    ) -> NotebookNode:
        """nbclient's ``async_execute_cell``, the kernel client's round trips replaced by the child's."""
        await run_hook(self.on_cell_start, cell=cell, cell_index=cell_index)
        if cell.cell_type != "code" or not cell.source.strip():
            return cell
        if self.skip_cells_with_tag in cell.metadata.get("tags", []):
            return cell
        if self.record_timing:
            cell["metadata"]["execution"] = {}
        await run_hook(self.on_cell_execute, cell=cell, cell_index=cell_index)
        await run_hook(self.on_cell_complete, cell=cell, cell_index=cell_index)
        self.code_cells_executed += 1
        cell.outputs = []
        self.clear_before_next_output = False
        timeout = self._get_timeout(cell)
        try:
            exec_reply = await asyncio.wait_for(self._exchange(cell, cell_index, store_history), timeout)
        except TimeoutError:
            self.zygote_kernel.kill_now()
            raise CellTimeoutError.error_from_timeout_and_cell("Cell execution timed out", timeout or 0, cell) from None
        except ZygoteGone as exc:
            raise DeadKernelError(f"Kernel died: {exc}") from None
        if execution_count:
            cell["execution_count"] = execution_count
        await run_hook(self.on_cell_executed, cell=cell, cell_index=cell_index, execute_reply=exec_reply)
        await self._check_raise_for_error(cell, cell_index, exec_reply)
        self.nb["cells"][cell_index] = cell
        return cell

    execute_cell = run_sync(async_execute_cell)

    async def _exchange(self, cell: NotebookNode, cell_index: int, store_history: bool) -> dict[str, Any]:
        """Send the cell; every message but the reply through nbclient's ``process_message``."""
        parent = {"msg_id": f"cell-{cell_index}"}
        request = {"execute": {"code": cell.source, "silent": False, "store_history": store_history}}
        async for message in self.zygote_kernel.request(request):
            if "reply" in message:
                reply = {"content": message["reply"], "header": message.get("header", {}), "parent_header": parent}
                if self.record_timing:
                    cell["metadata"]["execution"]["shell.execute_reply"] = _now()
                return reply
            message["parent_header"] = parent
            header = message.get("header") or {}
            if isinstance(header.get("date"), str):  # nbclient's timings read it as a datetime, else say "now"
                header["date"] = datetime.fromisoformat(header["date"])
            if message["msg_type"] == "status" and message["content"].get("execution_state") == "idle":
                if self.record_timing:
                    cell["metadata"]["execution"]["iopub.status.idle"] = _iso(message["header"]["date"])
                continue
            self.process_message(message, cell, cell_index)
        raise ZygoteGone("no reply")  # pragma: no cover - request() ends with a reply or raises


def _iso(date: datetime | str) -> str:
    return date.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if isinstance(date, datetime) else date


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def execute_cells(client: ZygoteNotebookClient) -> None:
    """papermill's ``papermill_execute_cells`` and kernel_info step, on the zygote child."""
    client.reset_execution_trackers()
    for index, cell in enumerate(client.nb.cells):
        try:
            client.nb_man.cell_start(cell, index)
            await client.async_execute_cell(cell, index)
        except CellExecutionError as exc:
            client.nb_man.cell_exception(client.nb.cells[index], cell_index=index, exception=exc)
            break
        finally:
            client.nb_man.cell_complete(client.nb.cells[index], cell_index=index)
    info = await client.zygote_kernel.kernel_info()
    client.nb.metadata["language_info"] = info["content"]["language_info"]
    client.set_widgets_metadata()


_standalone: Zygote | None = None
_standalone_lock = threading.Lock()


def standalone_zygote() -> Zygote:
    """This process's own zygote, for papermill used directly: started once, killed when the process exits."""
    global _standalone
    with _standalone_lock:
        if _standalone is None:
            _standalone = Zygote(sys.executable, 0, None)
            atexit.register(_standalone.close_sync)
        return _standalone


async def _run(nb_man: Any, kernel_name: str, options: dict[str, Any]) -> None:
    kernel = await standalone_zygote().fork(kernel_name, caller=Path.cwd())
    try:
        await execute_cells(ZygoteNotebookClient(nb_man, kernel, **options))
    finally:
        await kernel.discard()


class ZygoteEngine(Engine):  # type: ignore[misc]
    """papermill's engine for python3 notebooks on a forked, pre-imported interpreter; other kernels go
    to papermill's nbclient engine."""

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man: Any,
        kernel_name: str,
        log_output: bool = False,
        stdout_file: Any = None,
        stderr_file: Any = None,
        start_timeout: int = 60,
        execution_timeout: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """As :class:`papermill.engines.NBClientEngine` does, with the cells run on a zygote child."""
        if kernel_name not in PYTHON_KERNELS:
            return NBClientEngine.execute_managed_notebook(
                nb_man, kernel_name, log_output, stdout_file, stderr_file, start_timeout, execution_timeout, **kwargs
            )
        kwargs = remove_args(["input_path", "startup_timeout"], **kwargs)
        options = merge_kwargs(
            remove_args(["timeout"], **kwargs),
            timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
        )
        run_sync(_run)(nb_man, kernel_name, options)
        return nb_man.nb
