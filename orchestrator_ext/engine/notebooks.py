"""Running a notebook through papermill on a warm kernel.

papermill's own pipeline, step by step: ``parameterize_notebook`` injects the
inputs after the ``parameters`` cell, ``NotebookExecutionManager`` keeps each
cell's timing and status in the notebook's metadata, ``PapermillNotebookClient``
executes the cells on the kernel we hand it, and ``raise_for_execution_errors``
marks the failing cell and names it. Only the driving loop is ours, so that it
is asynchronous (the worker runs several notebooks at once) and streams each
cell's start, end and printed lines as events.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nbformat
from nbclient.exceptions import CellExecutionError
from nbformat import NotebookNode
from orchestrator_runtimes import RunError
from orchestrator_runtimes.reporting import records_of
from orchestrator_runtimes.runtime import ErrorKind
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NotebookExecutionManager
from papermill.exceptions import PapermillExecutionError
from papermill.execute import prepare_notebook_metadata, raise_for_execution_errors, remove_error_markers
from papermill.parameterize import parameterize_notebook

from .events import RunEvents
from .kernels import Kernel

#: exceptions raised by a notebook that are worth another attempt (the network, the disk), by name
RETRYABLE_ERRORS = frozenset(
    {
        "ConnectionError",
        "ConnectionResetError",
        "ConnectionRefusedError",
        "ConnectionAbortedError",
        "BrokenPipeError",
        "TimeoutError",
        "HTTPError",
        "URLError",
        "RetryableError",
    }
)
TRUNCATED = "\n[output truncated: the run printed more than {limit} bytes; the rest is not kept]\n"


@dataclass
class NotebookOutcome:
    """An executed notebook: the document, what it recorded, and its error if a cell failed."""

    notebook: dict[str, Any]
    outputs: dict[str, Any]
    error: RunError | None


class _StreamingClient(PapermillNotebookClient):  # type: ignore[misc]
    """papermill's client, reporting outputs as events and keeping at most ``max_output_bytes`` of them."""

    def __init__(self, nb_man: Any, kernel: Kernel, events: RunEvents, max_output_bytes: int) -> None:
        super().__init__(nb_man, km=kernel.manager, kernel_name=kernel.name, timeout=None, allow_errors=False)
        self.kc = kernel.client
        self.events = events
        self.max_output_bytes = max_output_bytes
        self.kept = 0
        self.truncated = False

    def output(self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None, cell_index: int) -> Any:
        content = msg.get("content", {})
        if msg.get("msg_type") == "stream":
            text = str(content.get("text", ""))
            self.events.log(str(content.get("name", "stdout")), text, cell=cell_index)
            if self.truncated:
                return None
            room = self.max_output_bytes - self.kept
            if len(text) > room:
                self.truncated = True
                if room > 0:
                    super().output(outs, {**msg, "content": {**content, "text": text[:room]}}, display_id, cell_index)
                marker = TRUNCATED.format(limit=self.max_output_bytes)
                outs.append(nbformat.v4.new_output("stream", name="stderr", text=marker))
                return None
            self.kept += len(text)
        return super().output(outs, msg, display_id, cell_index)


def prepare(notebook: Mapping[str, Any], parameters: Mapping[str, Any], kernel_name: str, source: str) -> NotebookNode:
    """The notebook to run: parameters injected (papermill's cell), metadata reset."""
    nb = nbformat.from_dict(dict(notebook))
    nb.metadata.setdefault("papermill", {})
    for cell in nb.cells:  # what papermill's loader guarantees
        cell.metadata.setdefault("tags", [])
        cell.metadata.setdefault("papermill", {})
    if parameters:
        nb = parameterize_notebook(nb, dict(parameters), report_mode=False, kernel_name=kernel_name, language="python")
    nb = prepare_notebook_metadata(nb, source, None)
    prepared: NotebookNode = remove_error_markers(nb)
    return prepared


async def run_notebook(
    nb: NotebookNode, kernel: Kernel, events: RunEvents, *, max_output_bytes: int
) -> NotebookOutcome:
    """Execute every cell of ``nb`` on ``kernel`` until one fails; never raises for the notebook's own errors."""
    nb_man = NotebookExecutionManager(nb, output_path=None, progress_bar=False, log_output=False, autosave_cell_every=0)
    client = _StreamingClient(nb_man, kernel, events, max_output_bytes)
    client.reset_execution_trackers()
    nb_man.notebook_start()
    try:
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            await _run_cell(client, nb_man, cell, index, events)
            if cell.metadata.get("papermill", {}).get("exception"):
                break
        info = await kernel.client.kernel_info(reply=True, timeout=5)
        nb.metadata["language_info"] = info["content"].get("language_info", {})
    finally:
        nb_man.notebook_complete()
    return _outcome(nb_man.nb)


async def _run_cell(client: _StreamingClient, nb_man: Any, cell: NotebookNode, index: int, events: RunEvents) -> None:
    nb_man.cell_start(cell, index)
    started = time.monotonic()
    events.step({"cell": index, "state": "started", "at": time.time()})
    state = "succeeded"
    try:
        await client.async_execute_cell(cell, index)
    except CellExecutionError as exc:
        nb_man.cell_exception(cell, cell_index=index, exception=exc)
        state = "failed"
    finally:
        nb_man.cell_complete(cell, cell_index=index)
    duration_ms = round((time.monotonic() - started) * 1000, 3)
    events.step({"cell": index, "state": state, "duration_ms": duration_ms, "at": time.time()})


def _outcome(nb: NotebookNode) -> NotebookOutcome:
    error: RunError | None = None
    try:
        raise_for_execution_errors(nb, None)
    except PapermillExecutionError as exc:
        error = RunError(
            ErrorKind.CODE,
            f"cell {exc.cell_index} raised {exc.ename}: {exc.evalue}",
            retryable=exc.ename in RETRYABLE_ERRORS,
            cell=exc.cell_index,
            execution_count=exc.exec_count,
            ename=exc.ename,
            evalue=exc.evalue,
            traceback=[str(line) for line in exc.traceback][-30:],
        )
    document = nbformat.from_dict(nb)
    return NotebookOutcome(notebook=dict(document), outputs=records_of(dict(document)), error=error)
