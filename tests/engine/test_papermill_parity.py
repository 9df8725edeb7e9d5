"""papermill parity, measured: papermill's own test notebooks through the API and through papermill itself.

Each case runs one notebook twice with the same inputs: through ``POST
/workflows/{id}/execute`` (queue, worker; on each notebook engine: a fork of
the notebook zygote, and a warm kernel) and through
``papermill.execute_notebook`` with a kernel in this process. Beyond the API,
every one of papermill's notebooks here runs through papermill on its own
``zygote`` engine and on its nbclient engine, and the two output notebooks
must agree (with a notebook written here for the rich outputs papermill's do
not have: mimebundles, display updates, clear_output, magics). The two must agree on the final
state, the error's name and value, where the failing cell is, the injected
parameters cell (order included), ``metadata.papermill.parameters`` and every
cell's outputs. The notebooks in ``papermill_notebooks/`` are papermill's, copied
unchanged with its licence; the nbformat 3 one is built here with ``nbformat.v3``
because papermill ships none.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest
from papermill.exceptions import PapermillExecutionError

from tests.conftest import Api
from tests.engine.conftest import who

NOTEBOOKS = Path(__file__).parent / "papermill_notebooks"


@dataclass
class Case:
    """One notebook, the inputs both tools get, and how the workflow is given it."""

    notebook: str
    inputs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    by_path: bool = False  # saved through the server's own PUT /api/contents, then named by path
    #: for a failing notebook: the cell as its author counts it (0-based, like papermill's cell_index)
    cell: int | None = None
    #: for a failing notebook: what the run's message says (beyond papermill's ename and evalue)
    message: str = ""


CASES = {
    # a parameters cell, sources as lists of lines, nbformat 4.4; saved as JupyterLab saves
    "simple_execute": Case("simple_execute.ipynb", {"msg": "Hello"}, by_path=True),
    # papermill's leniency, asked for: names it does not declare, in the request's (unsorted) order
    "simple_execute_lenient": Case(
        "simple_execute.ipynb", {"msg": "hi", "zeta": 2, "alpha": {"b": 1, "a": [1, 2]}}, {"inputs": "lenient"}
    ),
    # no parameters cell: the inputs are injected at the top
    "no_parameters": Case("no_parameters.ipynb", {"msg": "injected", "b": 2, "a": 1}),
    # nbformat 3, upgraded as papermill upgrades it
    "nbformat_3": Case("nbformat3.ipynb", {"n": 20}),
    # fails in cell 6 of the notebook as given and as executed (papermill drops the old error markers at 0
    # and 2, its cell_index says 4, and it adds two new markers before the cell)
    "broken1": Case("broken1.ipynb", cell=6, message="cell 6 raised AssertionError:  (In [2]; cell 6 of the executed"),
    # papermill says only CellExecutionError (no error output): the message carries the kernel's UsageError
    "line_magic_error": Case(
        "line_magic_error.ipynb", cell=0, message="UsageError: Line magic function `%undefined-line-magic` not found"
    ),
    # sys.exit(0) stops the notebook and counts as success
    "sysexit0": Case("sysexit0.ipynb"),
}


def nbformat3_notebook(path: Path) -> None:
    """An nbformat 3 notebook (worksheets, ``input`` for sources) with a parameters cell."""
    v3 = nbformat.v3
    cells = [
        v3.new_code_cell(input="n = 1", metadata={"tags": ["parameters"]}),
        v3.new_code_cell(input="print(n * 2)"),
        v3.new_text_cell("markdown", source="The end."),
    ]
    nb = v3.new_notebook(worksheets=[v3.new_worksheet(cells=cells)], metadata={})
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.write_text(nbformat.writes(nb, version=3), encoding="utf-8")


def notebook_file(case: Case, tmp_path: Path) -> Path:
    if case.notebook == "nbformat3.ipynb":
        path = tmp_path / case.notebook
        nbformat3_notebook(path)
        return path
    return NOTEBOOKS / case.notebook


@dataclass
class Run:
    status: str
    notebook: dict[str, Any]
    ename: str | None = None
    evalue: str | None = None
    executed_cell: int | None = None


async def run_papermill(path: Path, inputs: dict[str, Any], tmp_path: Path) -> Run:
    """papermill.execute_notebook in this process (in a thread: the server runs on this event loop)."""
    output = tmp_path / f"papermill-{path.name}"

    def execute() -> Run:
        try:
            papermill.execute_notebook(
                str(path), str(output), parameters=inputs, kernel_name="python3", progress_bar=False
            )
        except PapermillExecutionError as exc:
            written = json.loads(output.read_text())
            return Run("failed", written, exc.ename, exc.evalue, exc.cell_index + 2)  # + its two marker cells
        return Run("succeeded", json.loads(output.read_text()))

    # not asyncio.to_thread: it copies the context, and with it jupyter_core's loop (this one, running)
    return await asyncio.get_running_loop().run_in_executor(None, execute)


async def put_contents(jp_fetch: Any, user: str, name: str, document: dict[str, Any]) -> None:
    """Save a notebook the way JupyterLab does: PUT /api/contents/<name> (nbformat writes lists of lines)."""
    body = json.dumps({"type": "notebook", "format": "json", "content": document})
    reply = await jp_fetch(
        "api", "contents", name, method="PUT", body=body, headers={"Authorization": f"token user:{user}"}
    )
    assert reply.code in (200, 201)


def comparable(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    """Each cell as both tools must agree on it: type, source, tags and outputs (ids and timings differ)."""
    cells = []
    for cell in notebook["cells"]:
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        cells.append(
            {
                "cell_type": cell["cell_type"],
                "source": source,
                "tags": cell["metadata"].get("tags", []),
                "outputs": [_output(output) for output in cell.get("outputs", [])],
                "failed": cell["metadata"].get("papermill", {}).get("exception"),
            }
        )
    return cells


def _output(output: dict[str, Any]) -> dict[str, Any]:
    if output["output_type"] == "stream":
        return {"stream": output["name"], "text": "".join(output["text"])}
    if output["output_type"] == "error":
        return {"error": output["ename"], "evalue": output["evalue"]}
    return {"data": output.get("data"), "type": output["output_type"]}


@pytest.mark.parametrize("engine", ["zygote", "kernel"])
@pytest.mark.parametrize("name", list(CASES))
async def test_the_api_runs_papermills_notebooks_as_papermill_does(
    name: str,
    engine: str,
    api: Api,
    jp_fetch: Any,
    workers: Any,
    create_agent: Any,
    create_workflow: Any,
    run_to_end: Any,
    tmp_path: Path,
) -> None:
    case = CASES[name]
    path = notebook_file(case, tmp_path)
    document = json.loads(path.read_text())
    user = who()
    notebook_spec: dict[str, Any] = {"content": document}
    if case.by_path:
        await put_contents(jp_fetch, user, path.name, document)
        notebook_spec = {"path": path.name}
    agent = await create_agent(user=user, framework="notebook")
    workflow = await create_workflow(user, agent["id"], spec={"notebook": notebook_spec, "options": case.options})

    reference = asyncio.ensure_future(run_papermill(path, case.inputs, tmp_path))
    async with workers(notebook_engine=engine):
        run = await run_to_end(user, workflow["id"], inputs=case.inputs)
    expected = await reference
    executed = await api("GET", "executions", run["id"], "notebook", user=user)
    assert executed.status == 200, executed.text
    ours = executed.json

    assert run["status"] == expected.status, run["error"]
    assert run["inputs"] == case.inputs
    assert list(run["inputs"]) == list(case.inputs)  # the request's order, kept
    assert comparable(ours) == comparable(expected.notebook)
    assert ours["metadata"]["papermill"]["parameters"] == expected.notebook["metadata"]["papermill"]["parameters"]
    if case.inputs:
        assert list(ours["metadata"]["papermill"]["parameters"]) == list(case.inputs)
    elif "papermill" not in document.get("metadata", {}):  # no earlier run's metadata to keep
        assert ours["metadata"]["papermill"]["parameters"] == {}  # not null
    assert (ours["nbformat"], ours["nbformat_minor"]) == (
        expected.notebook["nbformat"],
        expected.notebook["nbformat_minor"],
    )
    if expected.status == "failed":
        error = run["error"]
        assert (error["kind"], error["ename"], error["evalue"]) == ("code", expected.ename, expected.evalue)
        assert error["executed_cell"] == expected.executed_cell
        assert ours["cells"][error["executed_cell"]]["metadata"]["papermill"]["exception"] is True
        assert error["cell"] == case.cell
        assert case.message in error["message"]
        assert error["traceback"]
        assert run["attempt"] == 1


# ---- papermill itself, on both engines ---------------------------------------------------------------

#: what each of papermill's notebooks is given (its parameters cell's names)
ENGINE_INPUTS: dict[str, dict[str, Any]] = {
    "simple_execute.ipynb": {"msg": "Hello"},
    "no_parameters.ipynb": {"msg": "injected"},
    "complex_parameters.ipynb": {"msg": "x", "a": 2.5, "b": True, "c": [1, "two"], "d": {"k": None}},
    "report_mode_test.ipynb": {"a": 3},
}
ENGINE_NOTEBOOKS = [*sorted(path.name for path in NOTEBOOKS.glob("*.ipynb")), "nbformat3.ipynb", "rich_outputs.ipynb"]

RICH = [
    "from IPython.display import HTML, Markdown, display, update_display, clear_output\nimport sys, warnings",
    "display({'text/plain': 'plain', 'text/html': '<b>bold</b>', 'application/json': {'a': [1, 2]}}, raw=True)",
    "handle = display(Markdown('*first*'), display_id='shown')\nprint('between')\n"
    "update_display(Markdown('**second**'), display_id='shown')",
    "print('gone'); clear_output(wait=True); print('kept'); print('to stderr', file=sys.stderr)",
    "class Table:\n    def _repr_html_(self): return '<table><tr><td>1</td></tr></table>'\n"
    "    def __repr__(self): return 'Table()'\nTable()",
    "%%capture captured\nprint('hidden')",
    "print(captured.stdout.strip()); warnings.warn('careful'); x = 3\n%precision 2\nx / 7",
    "!echo from-a-shell",
    "def fails():\n    raise ValueError('bad value')\nfails()",
]


def rich_outputs_notebook(path: Path) -> None:
    """Outputs papermill's own notebooks do not have, written as JupyterLab writes them."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in RICH])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def engine_run(path: Path, output: Path, engine: str) -> tuple[dict[str, Any], tuple[Any, ...] | None]:
    """papermill on ``engine``: the output notebook, and its error's (ename, evalue, cell) if it failed."""
    try:
        papermill.execute_notebook(
            str(path),
            str(output),
            parameters=ENGINE_INPUTS.get(path.name, {}),
            engine_name=engine,
            kernel_name="python3",
            progress_bar=False,
        )
        error = None
    except PapermillExecutionError as exc:
        error = (exc.ename, exc.evalue, exc.cell_index)
    return json.loads(output.read_text()), error


def _tracebacks(notebook: dict[str, Any]) -> list[list[str]]:
    return [o["traceback"] for c in notebook["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]


def _same_process(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each kernel compiles cells to files named after its pid (``/tmp/ipykernel_<pid>/``): not compared."""
    return json.loads(re.sub(r"ipykernel_\d+", "ipykernel_<pid>", json.dumps(cells)))  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ENGINE_NOTEBOOKS)
def test_papermills_notebooks_give_the_same_notebook_on_its_zygote_and_nbclient_engines(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if name == "rich_outputs.ipynb":
        path = tmp_path / name
        rich_outputs_notebook(path)
    else:
        path = notebook_file(Case(name), tmp_path)
    monkeypatch.chdir(tmp_path)
    ours, our_error = engine_run(path, tmp_path / "zygote.ipynb", "zygote")
    theirs, their_error = engine_run(path, tmp_path / "nbclient.ipynb", "nbclient")
    assert _same_process(comparable(ours)) == _same_process(comparable(theirs))
    assert our_error == their_error
    assert _tracebacks(ours) == _tracebacks(theirs)  # ipykernel's own formatting, colours included
    for key in ("parameters", "exception"):
        assert ours["metadata"]["papermill"].get(key) == theirs["metadata"]["papermill"].get(key)
    assert ours["metadata"]["language_info"] == theirs["metadata"]["language_info"]
    counts = [[c.get("execution_count") for c in nb["cells"]] for nb in (ours, theirs)]
    assert counts[0] == counts[1]
