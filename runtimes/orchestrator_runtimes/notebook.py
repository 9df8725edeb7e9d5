"""Notebook workflows: reading a notebook, the parameters it takes, and checking inputs against them.

:func:`read_notebook_document` is the one way a notebook is read, by validation
and by execution alike (nbformat's reader: lists of lines joined, nbformat 3
upgraded). A notebook's parameters are the assignments of its first code cell
tagged ``parameters`` (the papermill convention). They are read with :mod:`ast`,
never executed: a literal default is kept, any other expression gives the
default ``None`` and the type ``"any"`` (an annotation, when present, names
the type). Inputs are checked against them unless the workflow asks for
papermill's lenient behaviour (``options.inputs: "lenient"``).

Running notebooks is the execution engine's work (``orchestrator_ext.engine``):
the :class:`NotebookRuntime` here only validates specs.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Iterator, Mapping
from itertools import islice
from typing import TYPE_CHECKING, Any, TypedDict

from .errors import SpecError

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from .spec import WorkflowSpec

PARAMETERS_TAG = "parameters"
NBFORMAT_MAJOR = 4
#: the versions read: 4.0 to 4.5 as they are, 3 upgraded to 4 (as papermill does)
NBFORMAT_MAJORS = (3, 4)
_MAX_PROBLEMS = 5
_MAX_MESSAGE = 300


class NotebookParameter(TypedDict):
    """One parameter of a notebook: its name, literal default (JSON) and type name."""

    name: str
    default: Any
    type: str


class ParametersCellError(ValueError):
    """The parameters cell is not Python that :mod:`ast` can read."""


class _NotLiteral(Exception):
    """An expression whose value is not a JSON-compatible literal."""


# ---- reading parameters ------------------------------------------------------


def cell_source(cell: Mapping[str, Any]) -> str:
    """A cell's source as one string (nbformat allows a string or a list of lines)."""
    source = cell.get("source", "")
    if isinstance(source, list):
        return "".join(str(line) for line in source)
    return str(source)


def parameters_cell(notebook: Mapping[str, Any]) -> str | None:
    """The source of the first code cell tagged ``parameters``, if any."""
    if notebook.get("nbformat") != NBFORMAT_MAJOR:  # nbformat 3 keeps its cells in worksheets: upgrade it
        try:
            notebook = read_notebook_document(notebook)
        except NotebookUnreadable:
            return None
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        return None
    for cell in cells:
        if not isinstance(cell, Mapping) or cell.get("cell_type") != "code":
            continue
        metadata = cell.get("metadata")
        tags = metadata.get("tags") if isinstance(metadata, Mapping) else None
        if isinstance(tags, list) and PARAMETERS_TAG in tags:
            return cell_source(cell)
    return None


def parse_parameters(notebook: Mapping[str, Any]) -> list[NotebookParameter]:
    """The parameters of a notebook, in the order they are first assigned (later assignments win)."""
    source = parameters_cell(notebook)
    if source is None:
        return []
    # IPython magics and shell escapes are not Python: blank them, keeping line numbers.
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError as exc:
        raise ParametersCellError(f"the parameters cell is not valid Python (line {exc.lineno}: {exc.msg})") from exc
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL characters, absurd nesting
        raise ParametersCellError(f"the parameters cell cannot be parsed ({type(exc).__name__})") from exc
    found: dict[str, NotebookParameter] = {}
    for statement in tree.body:
        for name, value, annotation in _assignments(statement):
            found[name] = _parameter(name, value, annotation)
    return list(found.values())


def _assignments(statement: ast.stmt) -> Iterator[tuple[str, ast.expr | None, ast.expr | None]]:
    """(name, value, annotation) for each plain name a top-level statement assigns."""
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        yield statement.target.id, statement.value, statement.annotation
    elif isinstance(statement, ast.Assign):
        for target in statement.targets:
            yield from _targets(target, statement.value)


def _targets(target: ast.expr, value: ast.expr | None) -> Iterator[tuple[str, ast.expr | None, ast.expr | None]]:
    if isinstance(target, ast.Name):
        yield target.id, value, None
    elif isinstance(target, ast.Tuple | ast.List):
        values = value.elts if isinstance(value, ast.Tuple | ast.List) else None
        paired = values is not None and len(values) == len(target.elts)
        for index, element in enumerate(target.elts):
            yield from _targets(element, values[index] if paired and values is not None else None)


def _parameter(name: str, value: ast.expr | None, annotation: ast.expr | None) -> NotebookParameter:
    try:
        default, inferred = _literal(value)
    except _NotLiteral:
        default, inferred = None, "any"
    kind = ast.unparse(annotation) if annotation is not None else inferred
    return NotebookParameter(name=name, default=default, type=kind)


def _literal(node: ast.expr | None) -> tuple[Any, str]:
    """A literal expression's value as JSON, and its type name."""
    if node is None:
        raise _NotLiteral
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise _NotLiteral from exc
    return _as_json(value), _type_name(value)


def _as_json(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotLiteral
        return value
    if isinstance(value, list | tuple):
        return [_as_json(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _as_json(item) for key, item in value.items()}
    raise _NotLiteral


def _type_name(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return "list"
    return type(value).__name__


# ---- reading a notebook -----------------------------------------------------


class NotebookUnreadable(ValueError):
    """A document nbformat cannot read as a notebook; ``problems`` says why, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def read_notebook_document(document: Mapping[str, Any]) -> NotebookNode:
    """``document`` as nbformat reads it: nbformat 4, each cell's source one string.

    The one reader of notebooks: validation (``POST /workflows/validate``, saving a
    version) and execution both call it, so a notebook is valid exactly when it
    can run. It takes what JupyterLab and papermill write: sources as lists of
    lines, nbformat 4.0 to 4.5, and nbformat 3, upgraded as papermill upgrades it
    (``nbformat.reads(..., as_version=4)``). The document is checked against the
    schema of its own version first, because ``nbformat.reads`` only logs what is
    invalid.
    """
    major, minor = document.get("nbformat"), document.get("nbformat_minor")
    if major not in NBFORMAT_MAJORS or isinstance(major, bool):
        raise NotebookUnreadable([f"nbformat must be 4 (or 3, upgraded to 4), not {major!r}"])
    if not isinstance(minor, int) or isinstance(minor, bool) or minor < 0:
        raise NotebookUnreadable([f"nbformat_minor must be a non-negative integer, not {minor!r}"])
    import nbformat  # about a second to import: only where a notebook is read
    from nbformat.validator import iter_validate

    errors = iter_validate(dict(document), version=major, version_minor=minor)  # type: ignore[no-untyped-call]
    problems = [_schema_problem(error) for error in islice(errors, _MAX_PROBLEMS)]
    problems = problems or _duplicate_cell_ids(document)  # before nbformat "repairs" them with a warning
    if problems:
        raise NotebookUnreadable(problems)
    try:
        notebook: NotebookNode = nbformat.reads(json.dumps(document), as_version=NBFORMAT_MAJOR)  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # an upgrade nbformat cannot do
        raise NotebookUnreadable([_clip(f"nbformat cannot read it: {type(exc).__name__}: {exc}")]) from exc
    try:
        parse_parameters(notebook)
    except ParametersCellError as exc:
        problems.append(str(exc))
    if problems:
        raise NotebookUnreadable(problems)
    return notebook


def notebook_problems(notebook: Mapping[str, Any]) -> list[str]:
    """What keeps a notebook document from running (empty when :func:`read_notebook_document` reads it)."""
    try:
        read_notebook_document(notebook)
    except NotebookUnreadable as exc:
        return exc.problems
    return []


def _schema_problem(error: Any) -> str:
    where = ".".join(str(part) for part in error.absolute_path)
    return _clip(f"{where}: {error.message}" if where else str(error.message))


def _duplicate_cell_ids(notebook: Mapping[str, Any]) -> list[str]:
    seen: dict[str, int] = {}
    problems = []
    for index, cell in enumerate(notebook.get("cells") or []):
        cell_id = cell.get("id") if isinstance(cell, Mapping) else None
        if not isinstance(cell_id, str):
            continue
        if cell_id in seen:
            problems.append(f"cells.{index}.id: duplicate cell id '{cell_id}' (also cells.{seen[cell_id]})")
        seen.setdefault(cell_id, index)
    return problems


def _clip(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."


# ---- the runtime -------------------------------------------------------------


class NotebookRuntime:
    """The runtime of ``notebook`` agents (entry point ``orchestrator.runtimes: notebook``).

    For now it validates specs; executing notebooks arrives with the execution engine.
    """

    name = "notebook"

    def validate(self, spec: WorkflowSpec) -> list[SpecError]:
        """What keeps ``spec`` from running as a notebook (a notebook file is checked when it is snapshotted)."""
        if spec.notebook is None:
            return [SpecError("spec.notebook", "a notebook workflow needs a notebook (a path or its content)")]
        if spec.nodes:
            return [SpecError("spec.nodes", "a notebook spec has no nodes")]
        problems = [SpecError(f"spec.{field}", message) for field, message in notebook_option_problems(spec.options)]
        if spec.notebook.content is not None:
            content = notebook_problems(spec.notebook.content)
            problems.extend(SpecError("spec.notebook.content", problem) for problem in content)
        return problems


# ---- checking inputs against parameters --------------------------------------

#: what a parameter of each type accepts (JSON values as Python decodes them)
_ACCEPTS: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}
_JSON_NAMES = {int: "integer", float: "number", str: "string", bool: "boolean", list: "array", dict: "object"}


def input_problems(parameters: list[NotebookParameter], inputs: Mapping[str, Any]) -> dict[str, str]:
    """Input name -> what is wrong with it: not a parameter, or a value of the wrong type.

    A parameter typed ``any`` or ``none`` (or with an annotation we do not know)
    takes any value; ``float`` takes integers too; ``Optional[T]`` and ``T | None``
    take null.
    """
    known = {p["name"]: p for p in parameters}
    listed = ", ".join(known) or "none"
    problems: dict[str, str] = {}
    for name, value in inputs.items():
        parameter = known.get(name)
        if parameter is None:
            problems[name] = f"the notebook has no parameter '{name}' (its parameters: {listed})"
            continue
        expected, optional = _expected(parameter["type"])
        if expected is None or (value is None and optional):
            continue
        if not _fits(value, expected):
            wanted = _JSON_NAMES.get(expected[-1], expected[-1].__name__)
            problems[name] = f"expected {wanted} for parameter '{name}' ({parameter['type']}), got {_json_type(value)}"
    return problems


def _expected(type_name: str) -> tuple[tuple[type, ...] | None, bool]:
    text = type_name.replace(" ", "")
    optional = False
    if text.startswith("Optional[") and text.endswith("]"):
        text, optional = text[len("Optional[") : -1], True
    for suffix in ("|None",):
        if text.endswith(suffix):
            text, optional = text[: -len(suffix)], True
    if text.startswith("None|"):
        text, optional = text[len("None|") :], True
    base = text.split("[", 1)[0].lower()
    return _ACCEPTS.get(base), optional


def _fits(value: Any, expected: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # a bool is an int to Python, not to a notebook's author
        return bool in expected
    return isinstance(value, expected)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    for kind in (bool, int, float, str, list, dict):
        if isinstance(value, kind):
            return _JSON_NAMES[kind]
    return type(value).__name__


# ---- inputs: typed (strict) or as papermill takes them (lenient) --------------

INPUTS_OPTION = "inputs"
STRICT, LENIENT = "strict", "lenient"


def inputs_mode(spec: Mapping[str, Any]) -> str:
    """How a notebook workflow's spec asks for its inputs to be checked: ``strict`` unless it says ``lenient``."""
    options = spec.get("options")
    mode = options.get(INPUTS_OPTION) if isinstance(options, Mapping) else None
    return LENIENT if mode == LENIENT else STRICT


def notebook_input_problems(notebook: Mapping[str, Any], inputs: Mapping[str, Any], mode: str) -> dict[str, str]:
    """Input name -> what is wrong with it (empty: the inputs may run).

    ``strict`` (the default) holds a notebook that has a parameters cell to it:
    only its parameters, each of its type. A notebook without one takes any
    inputs, injected at the top as papermill injects them; so does every notebook
    under ``lenient``, papermill's own behaviour (it only warns of unknown names).
    """
    if mode == LENIENT or parameters_cell(notebook) is None:
        return {}
    return input_problems(parse_parameters(notebook), inputs)


def notebook_option_problems(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each option a notebook workflow does not take (it takes ``inputs``)."""
    problems: list[tuple[str, str]] = []
    for key, value in options.items():
        if key != INPUTS_OPTION:
            problems.append((f"options.{key}", f"a notebook workflow has no option '{key}' (its one option: inputs)"))
        elif value not in (STRICT, LENIENT):
            problems.append(
                (
                    f"options.{key}",
                    f"must be '{STRICT}' (inputs typed by the parameters cell, the default) or "
                    f"'{LENIENT}' (any inputs, as papermill takes them), not {value!r}",
                )
            )
    return problems
