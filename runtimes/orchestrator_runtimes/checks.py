"""Small checks the runtimes' spec validators share: each answers a problem's text, or nothing."""

from __future__ import annotations

from typing import Any

from .tools import tool_problem

Problems = list[tuple[str, str]]


def nonempty(value: Any) -> bool:
    """A non-empty string (not only spaces)."""
    return isinstance(value, str) and bool(value.strip())


def positive_int(value: Any, limit: int = 1_000_000) -> bool:
    """An integer from 1 to ``limit`` (a bool is not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= limit


def temperature_problems(options: Any) -> Problems:
    """``options.temperature``, when given, is a number from 0 to 2."""
    if "temperature" not in options:
        return []
    value = options["temperature"]
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 2:
        return []
    return [("options.temperature", "must be a number from 0 to 2")]


def tool_list_problems(where: str, tools: Any) -> Problems:
    """``<where>.tools``: a list of tool references, each one that :func:`.tools.tool_problem` accepts."""
    if not isinstance(tools, list):
        return [(f"{where}.tools", "must be a list of tool references")]
    problems: Problems = []
    for position, reference in enumerate(tools):
        if not isinstance(reference, str):
            problems.append((f"{where}.tools.{position}", "must be a string"))
        elif problem := tool_problem(reference):
            problems.append((f"{where}.tools.{position}", problem))
    return problems
