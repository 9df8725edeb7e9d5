"""Running a notebook through papermill on a warm kernel.

papermill's own pipeline, step by step: the notebook is read as papermill's
``load_notebook_node`` reads it (nbformat's reader, through
:func:`~orchestrator_runtimes.notebook.read_notebook_document`, the reader that
validation uses too), ``parameterize_notebook`` injects the inputs after the
``parameters`` cell (at the top when there is none), ``NotebookExecutionManager`` keeps each
cell's timing and status in the notebook's metadata, ``PapermillNotebookClient``
executes the cells on the kernel we hand it, and ``raise_for_execution_errors``
marks the failing cell and names it. On a child of the notebook zygote
(:mod:`.zygote`), :class:`.zygote_client.ZygoteNotebookClient` takes that
client's place: the same output handling, the cells sent over the child's
connection. Only the driving loop is ours, so that it
is asynchronous (the worker runs several notebooks at once) and streams each
cell's start, end and printed lines as events.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nbformat
import papermill
from nbclient.exceptions import CellExecutionError
from nbformat import NotebookNode
from orchestrator_runtimes import RunError
from orchestrator_runtimes.notebook import NotebookUnreadable, read_notebook_document
from orchestrator_runtimes.reporting import records_of
from orchestrator_runtimes.runtime import ErrorKind
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NotebookExecutionManager
from papermill.exceptions import PapermillException, PapermillExecutionError
from papermill.execute import prepare_notebook_metadata, raise_for_execution_errors, remove_error_markers
from papermill.parameterize import parameterize_notebook

from .events import RunEvents
from .kernels import JupyterKernel, Kernel
from .zygote import ZygoteKernel
from .zygote_client import ZygoteNotebookClient

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
_ORIGIN = "orchestrator_origin"  # a cell's index as given, in its metadata while it is prepared
TRUNCATED = "\n[output truncated: the run printed more than {limit} bytes; the rest is not kept]\n"


@dataclass
class NotebookOutcome:
    """An executed notebook: the document, what it recorded, and its error if a cell failed."""

    notebook: dict[str, Any]
    outputs: dict[str, Any]
    error: RunError | None


class _Streaming:
    """Reports a client's outputs as events and keeps at most ``max_output_bytes`` of them."""

    events: RunEvents
    max_output_bytes: int
    kept = 0
    truncated = False

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
                    super().output(  # type: ignore[misc]
                        outs, {**msg, "content": {**content, "text": text[:room]}}, display_id, cell_index
                    )
                marker = TRUNCATED.format(limit=self.max_output_bytes)
                outs.append(nbformat.v4.new_output("stream", name="stderr", text=marker))
                return None
            self.kept += len(text)
        return super().output(outs, msg, display_id, cell_index)  # type: ignore[misc]


class _StreamingClient(_Streaming, PapermillNotebookClient):  # type: ignore[misc]
    """papermill's client on a started kernel, streaming."""

    def __init__(self, nb_man: Any, kernel: JupyterKernel, events: RunEvents, max_output_bytes: int) -> None:
        super().__init__(nb_man, km=kernel.manager, kernel_name=kernel.name, timeout=None, allow_errors=False)
        self.kc = kernel.client
        self.events, self.max_output_bytes = events, max_output_bytes


class _ZygoteStreamingClient(_Streaming, ZygoteNotebookClient):
    """The same on a child of the notebook zygote."""

    def __init__(self, nb_man: Any, kernel: ZygoteKernel, events: RunEvents, max_output_bytes: int) -> None:
        super().__init__(nb_man, kernel, timeout=None, allow_errors=False)
        self.events, self.max_output_bytes = events, max_output_bytes


def _client(nb_man: Any, kernel: Kernel, events: RunEvents, max_output_bytes: int) -> Any:
    if isinstance(kernel, ZygoteKernel):
        return _ZygoteStreamingClient(nb_man, kernel, events, max_output_bytes)
    return _StreamingClient(nb_man, kernel, events, max_output_bytes)


@dataclass
class PreparedNotebook:
    """The notebook to run, and for each of its cells the index it had in the notebook as given.

    ``origins[i]`` is None for the cell papermill injected; it lets an error name
    the cell the way its author counts it, whatever papermill added or removed.
    """

    notebook: NotebookNode
    origins: list[int | None]


def prepare(
    document: Mapping[str, Any], parameters: Mapping[str, Any], kernel_name: str, source: str
) -> PreparedNotebook:
    """papermill's ``execute_notebook`` up to the execution: read, parameterize, metadata, old error markers gone.

    The notebook is read by :func:`read_notebook_document`, the reader validation uses
    too; inputs keep the order they were given in (papermill writes them in that order).
    """
    try:
        nb = _as_papermill_loads(read_notebook_document(document))
    except NotebookUnreadable as exc:
        raise RunError(ErrorKind.CONFIGURATION, f"the notebook cannot be read: {exc}", problems=exc.problems) from exc
    for index, cell in enumerate(nb.cells):
        cell.metadata[_ORIGIN] = index
    if parameters:
        language = nb.metadata.get("language_info", {}).get("name") or nb.metadata.get("kernelspec", {}).get("language")
        try:
            nb = parameterize_notebook(nb, dict(parameters), kernel_name=kernel_name, language=language or "python")
        except PapermillException as exc:  # no parameter translator for the notebook's kernel or language
            raise RunError(ErrorKind.CONFIGURATION, f"the inputs cannot be injected: {exc}") from exc
    nb = prepare_notebook_metadata(nb, source, None)
    nb = remove_error_markers(nb)
    origins = [cell.metadata.pop(_ORIGIN, None) for cell in nb.cells]
    return PreparedNotebook(nb, origins)


def _as_papermill_loads(nb: NotebookNode) -> NotebookNode:
    """What papermill's ``load_notebook_node`` does after reading: the latest nbformat 4, its metadata keys."""
    nb = nbformat.v4.upgrade(nb) or nb
    if "papermill" not in nb.metadata:
        nb.metadata["papermill"] = {
            "default_parameters": {},
            "parameters": {},
            "environment_variables": {},
            "version": papermill.__version__,
        }
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
        cell.metadata.setdefault("papermill", {})
    return nb


async def run_notebook(
    prepared: PreparedNotebook, kernel: Kernel, events: RunEvents, *, max_output_bytes: int
) -> NotebookOutcome:
    """Execute the cells of ``prepared`` on ``kernel`` until one fails; never raises for the notebook's own errors.

    Like papermill's client, every cell goes through the execution manager (markdown
    too, so its metadata matches papermill's); only code cells are reported as steps.
    """
    nb = prepared.notebook
    nb_man = NotebookExecutionManager(nb, output_path=None, progress_bar=False, log_output=False, autosave_cell_every=0)
    client = _client(nb_man, kernel, events, max_output_bytes)
    client.reset_execution_trackers()
    nb_man.notebook_start()
    failure: CellExecutionError | None = None
    try:
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                nb_man.cell_start(cell, index)
                nb_man.cell_complete(cell, cell_index=index)
                continue
            failure = await _run_cell(client, nb_man, cell, index, events)
            if failure is not None:
                break
        info = await kernel.client.kernel_info(reply=True, timeout=5)
        nb.metadata["language_info"] = info["content"].get("language_info", {})
    finally:
        nb_man.notebook_complete()
    return _outcome(PreparedNotebook(nb_man.nb, prepared.origins), failure)


async def _run_cell(
    client: Any, nb_man: Any, cell: NotebookNode, index: int, events: RunEvents
) -> CellExecutionError | None:
    nb_man.cell_start(cell, index)
    started = time.monotonic()
    events.step({"cell": index, "state": "started", "at": time.time()})
    failure = None
    try:
        await client.async_execute_cell(cell, index)
    except CellExecutionError as exc:
        nb_man.cell_exception(cell, cell_index=index, exception=exc)
        failure = exc
    finally:
        nb_man.cell_complete(cell, cell_index=index)
    duration_ms = round((time.monotonic() - started) * 1000, 3)
    state = "failed" if failure is not None else "succeeded"
    events.step({"cell": index, "state": state, "duration_ms": duration_ms, "at": time.time()})
    return failure


def _outcome(prepared: PreparedNotebook, failure: CellExecutionError | None) -> NotebookOutcome:
    """The outcome as papermill's ``raise_for_execution_errors`` judges it (it adds its error marker cells)."""
    nb = prepared.notebook
    cells = list(nb.cells)
    error: RunError | None = None
    try:
        raise_for_execution_errors(nb, None)
    except PapermillExecutionError as exc:
        error = _cell_error(exc, prepared.origins[exc.cell_index], _position(nb, cells[exc.cell_index]), failure)
    document = nbformat.from_dict(nb)
    return NotebookOutcome(notebook=dict(document), outputs=records_of(dict(document)), error=error)


def _cell_error(
    exc: PapermillExecutionError, given: int | None, executed: int, failure: CellExecutionError | None
) -> RunError:
    """The run's error for papermill's: the cell as its author counts it (0-based, like papermill's cell_index).

    ``ename``/``evalue`` are papermill's own. Where papermill has only ``CellExecutionError``
    (the cell wrote no error output: a magic's ``UsageError``), the message says what the
    kernel replied, so the reason is in the error and not only in the logs.
    """
    ename, evalue = str(exc.ename), str(exc.evalue)
    traceback = [str(line) for line in exc.traceback]
    if ename == "CellExecutionError" and failure is not None:
        ename, evalue = str(failure.ename), str(failure.evalue)
        traceback = traceback or str(failure.traceback).splitlines() or [f"{ename}: {evalue}"]
    where = f"cell {given}" if given is not None else "the injected-parameters cell"
    return RunError(
        ErrorKind.CODE,
        f"{where} raised {ename}: {evalue} (In [{exc.exec_count}]; cell {executed} of the executed notebook)",
        retryable=ename in RETRYABLE_ERRORS,
        cell=given,
        executed_cell=executed,
        execution_count=exc.exec_count,
        ename=exc.ename,
        evalue=exc.evalue,
        traceback=traceback[-30:],
    )


def _position(nb: NotebookNode, cell: NotebookNode) -> int:
    """Where ``cell`` (the object) is in ``nb`` now that papermill inserted its marker cells."""
    return next(index for index, candidate in enumerate(nb.cells) if candidate is cell)
