"""The two small languages of graph specs: ``{name}`` templates in prompts and edge conditions.

Templates fill ``{name}`` (or ``{name.key}``) from the run's values: its inputs
and the output of every node that ran, by node id (``last`` is the latest
output). Conditions are Python-like expressions over the same names, parsed and
evaluated by a small interpreter rather than ``eval``: literals, names,
``a.b`` / ``a["b"]`` lookups, comparisons (``== != < <= > >= in not in``),
``and or not``, arithmetic, and the calls ``len str int float bool lower upper
strip startswith endswith contains``. ``true``, ``false`` and ``null`` are
JSON's literals. A name that is not there is ``null``, so ``approve.approved``
is simply false before the approval node ran.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

TEMPLATE_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+)*)\}")
_LITERALS = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: b is not None and a in b,
    ast.NotIn: lambda a, b: b is None or a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "lower": lambda s: str(s).lower(),
    "upper": lambda s: str(s).upper(),
    "strip": lambda s: str(s).strip(),
    "startswith": lambda s, p: str(s).startswith(str(p)),
    "endswith": lambda s, p: str(s).endswith(str(p)),
    "contains": lambda s, p: str(p).lower() in str(s).lower(),
}
_METHODS = {"lower", "upper", "strip", "startswith", "endswith"}


class ExpressionError(ValueError):
    """A condition that cannot be parsed or evaluated; the message says where."""


def _lookup(value: Any, key: Any) -> Any:
    if isinstance(value, Mapping):
        return value.get(key)
    if isinstance(value, list | tuple | str) and isinstance(key, int):
        return value[key] if -len(value) <= key < len(value) else None
    return None


class _Checker(ast.NodeVisitor):
    """Refuses every construct the interpreter does not evaluate (so errors show at save time)."""

    allowed = (
        ast.Expression,
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.UnaryOp,
        ast.Not,
        ast.USub,
        ast.BinOp,
        ast.Compare,
        ast.Name,
        ast.Load,
        ast.Constant,
        ast.Attribute,
        ast.Subscript,
        ast.Call,
        ast.List,
        ast.Tuple,
        *_COMPARE,
        *_BINARY,
    )

    def generic_visit(self, node: ast.AST) -> None:
        if not isinstance(node, self.allowed):
            raise ExpressionError(f"'{type(node).__name__}' is not allowed in a condition")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ExpressionError(f"'.{node.attr}' is not allowed in a condition")
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id not in _FUNCTIONS:
                raise ExpressionError(f"unknown function '{func.id}' (known: {', '.join(sorted(_FUNCTIONS))})")
            if isinstance(func, ast.Attribute) and func.attr not in _METHODS:
                raise ExpressionError(f"unknown method '.{func.attr}()' (known: {', '.join(sorted(_METHODS))})")
            if not isinstance(func, ast.Name | ast.Attribute) or node.keywords:
                raise ExpressionError("only plain function calls are allowed in a condition")
        super().generic_visit(node)


def parse_condition(text: str) -> ast.Expression:
    """The parsed condition; :class:`ExpressionError` saying what is wrong."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"not a valid expression: {exc.msg} (column {exc.offset})") from None
    _Checker().visit(tree)
    return tree


def evaluate(tree: ast.Expression | str, names: Mapping[str, Any]) -> Any:
    """The value of a condition over ``names`` (a missing name is None)."""
    if isinstance(tree, str):
        tree = parse_condition(tree)
    return _eval(tree.body, names)


def _eval(node: ast.AST, names: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in _LITERALS:
            return _LITERALS[node.id]
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        return _lookup(_eval(node.value, names), node.attr)
    if isinstance(node, ast.Subscript):
        return _lookup(_eval(node.value, names), _eval(node.slice, names))
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, names) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, names)
        return (not operand) if isinstance(node.op, ast.Not) else -operand
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, names), _eval(node.right, names))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, names)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, names)
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError:
                return False
            left = right
        return True
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(e, names) for e in node.elts]
    if isinstance(node, ast.Call):
        args = [_eval(a, names) for a in node.args]
        if isinstance(node.func, ast.Attribute):
            return _FUNCTIONS[node.func.attr](_eval(node.func.value, names), *args)
        if isinstance(node.func, ast.Name):
            return _FUNCTIONS[node.func.id](*args)
    raise ExpressionError(f"cannot evaluate '{ast.unparse(node)}'")


def template_names(template: str) -> list[str]:
    """The top-level names a ``{name}`` template uses."""
    return [match[1] for match in TEMPLATE_FIELD.finditer(template)]


def render(template: str, names: Mapping[str, Any]) -> str:
    """Fill ``{name}`` / ``{name.key}`` from ``names``; a missing one is an ExpressionError naming it."""

    def fill(match: re.Match[str]) -> str:
        if match[1] not in names:
            raise ExpressionError(f"'{{{match[1]}{match[2]}}}' names no input and no node output")
        value = names[match[1]]
        for key in filter(None, match[2].split(".")):
            value = _lookup(value, int(key) if key.isdigit() else key)
        return value if isinstance(value, str) else ("" if value is None else _text(value))

    return TEMPLATE_FIELD.sub(fill, template)


def _text(value: Any) -> str:
    import json

    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)
