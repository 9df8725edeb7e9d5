"""The metric names a PromQL expression selects, read by a real PromQL parser (promql-parser).

A regular expression over the text would take a label value or a function's
name for a metric; the parser's tree names only the selectors.
"""

from __future__ import annotations

from typing import Any

import promql_parser


def metric_names(expr: str) -> set[str]:
    """Every metric name selected in ``expr`` (``ValueError`` when it is not valid PromQL)."""
    return _selected(promql_parser.parse(expr))


def _selected(node: Any) -> set[str]:
    if isinstance(node, promql_parser.VectorSelector):
        return {node.name} if node.name else set()
    if isinstance(node, promql_parser.MatrixSelector):
        return _selected(node.vector_selector)
    if isinstance(node, promql_parser.BinaryExpr):
        return _selected(node.lhs) | _selected(node.rhs)
    if isinstance(node, promql_parser.Call):
        return set().union(*(_selected(arg) for arg in node.args))
    if isinstance(node, promql_parser.AggregateExpr):
        return _selected(node.expr) | (_selected(node.param) if node.param is not None else set())
    if isinstance(node, (promql_parser.ParenExpr, promql_parser.UnaryExpr, promql_parser.SubqueryExpr)):
        return _selected(node.expr)
    return set()  # literals
