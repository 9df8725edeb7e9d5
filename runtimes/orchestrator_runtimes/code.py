"""Code-first workflows: a Python callable in the notebook server's files builds the framework object.

A reference is ``module:function`` (``agents.support:build_graph``, a module
under the server's root directory, or any installed module) or
``path/to/notebook.ipynb:function`` (the notebook's code cells are run as a
module, skipping magics and shell lines, and ``function`` is taken from it).
"""

from __future__ import annotations

import importlib
import re
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .runtime import ErrorKind, RunError

REFERENCE = re.compile(r"^(?P<where>[^:]+):(?P<name>[A-Za-z_][A-Za-z0-9_.]*)$")


def check_reference(reference: str) -> str | None:
    """Why ``reference`` is not ``module:function`` or ``notebook.ipynb:function``, or None."""
    match = REFERENCE.match(reference.strip())
    if match is None:
        return "must be 'module:function' or 'path/to/notebook.ipynb:function'"
    where = match["where"]
    if where.endswith(".ipynb"):
        if where.startswith("/") or ".." in Path(where).parts:
            return "the notebook path must be relative to the server's root directory, without '..'"
        return None
    if not all(part.isidentifier() for part in where.split(".")):
        return f"'{where}' is not a module name"
    return None


def load_callable(reference: str, files_root: Path | None) -> Callable[..., Any]:
    """The callable ``reference`` names; a configuration error saying what is missing."""
    problem = check_reference(reference)
    if problem:
        raise RunError(ErrorKind.CONFIGURATION, f"the callable '{reference}' {problem}")
    match = REFERENCE.match(reference.strip())
    if match is None:  # pragma: no cover - checked above
        raise RunError(ErrorKind.CONFIGURATION, f"the callable '{reference}' is not valid")
    where, name = match["where"], match["name"]
    module = _notebook_module(where, files_root) if where.endswith(".ipynb") else _module(where, files_root)
    target: Any = module
    for part in name.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise RunError(ErrorKind.CONFIGURATION, f"'{where}' has no '{name}'", callable=reference)
    if not callable(target):
        raise RunError(ErrorKind.CONFIGURATION, f"'{reference}' is not callable", callable=reference)
    return target  # type: ignore[no-any-return]


def _module(name: str, files_root: Path | None) -> types.ModuleType:
    if files_root is not None and str(files_root) not in sys.path:
        sys.path.insert(0, str(files_root))
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        where = f" under {files_root}" if files_root else ""
        raise RunError(ErrorKind.CONFIGURATION, f"no module '{exc.name}'{where}", callable=name) from exc


def _notebook_module(path: str, files_root: Path | None) -> types.ModuleType:
    import nbformat

    file = (files_root or Path.cwd()) / path
    if not file.is_file():
        raise RunError(ErrorKind.CONFIGURATION, f"no notebook '{path}' in the server's files", callable=path)
    notebook = nbformat.read(file, as_version=4)  # type: ignore[no-untyped-call]
    lines: list[str] = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        lines.extend(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        lines.append("")
    module = types.ModuleType(Path(path).stem)
    module.__file__ = str(file)
    # dont_inherit: this module's own `from __future__ import annotations` would otherwise turn the notebook's
    # annotations into strings that nothing can resolve later (LangGraph reads a state's `Annotated` reducers
    # with get_type_hints, which looks for the names in sys.modules, where this module is not)
    code = compile("\n".join(lines), str(file), "exec", dont_inherit=True)
    exec(code, module.__dict__)  # noqa: S102  # nosec B102 - the user's own notebook, in the user's own run process
    return module
