"""Tools a spec can name: a few built in, or any ``module:function`` in the server's files.

A tool is a plain Python function taking keyword arguments. Built-in tools are
named by a bare word (``calculator``); anything with a colon is a code
reference (:mod:`.code`). When a tool raises, the run fails with kind ``tool``
naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .code import check_reference, load_callable
from .expressions import ExpressionError, evaluate, parse_condition
from .runtime import ErrorKind, RunError


def calculator(expression: str) -> float | int:
    """Evaluate an arithmetic expression such as ``(2 + 3) * 4``."""
    try:
        value = evaluate(parse_condition(str(expression)), {})
    except (ExpressionError, ZeroDivisionError, TypeError) as exc:
        raise ValueError(f"cannot calculate {expression!r}: {exc}") from None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{expression!r} is not arithmetic")
    return value


def word_count(text: str) -> int:
    """Count the words of a text."""
    return len(str(text).split())


BUILTIN_TOOLS: dict[str, Callable[..., Any]] = {"calculator": calculator, "word_count": word_count}


def tool_problem(reference: str) -> str | None:
    """Why ``reference`` names no tool (checked when a spec is saved), or None."""
    if ":" in reference:
        return check_reference(reference)
    if reference not in BUILTIN_TOOLS:
        return f"no built-in tool '{reference}' (built in: {', '.join(sorted(BUILTIN_TOOLS))}; or 'module:function')"
    return None


def load_tool(reference: str, files_root: Path | None) -> Callable[..., Any]:
    if ":" in reference:
        return load_callable(reference, files_root)
    tool = BUILTIN_TOOLS.get(reference)
    if tool is None:
        raise RunError(ErrorKind.CONFIGURATION, tool_problem(reference) or f"no tool '{reference}'")
    return tool


def call_tool(name: str, tool: Callable[..., Any], arguments: dict[str, Any]) -> Any:
    """Call ``tool``; whatever it raises becomes a ``tool`` failure naming it."""
    try:
        return tool(**arguments)
    except RunError:
        raise
    except Exception as exc:
        raise RunError(
            ErrorKind.TOOL, f"the tool '{name}' failed: {type(exc).__name__}: {exc}", tool=name, arguments=arguments
        ) from exc
