"""The chart's alerts and dashboard: each alert has a runbook in docs/operations/, every metric an
alert queries is one a real server exports (scraped from a test server; the dashboard's panels are
checked the same way in tests/api/test_grafana_dashboard.py), and the dashboard is loaded for Grafana.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.test_helm_chart import VALUE_SETS, Doc, chart_dir, find, one, render
from tests.promql import metric_names

__all__ = ["chart_dir"]  # the chart's fixture, shared with test_helm_chart

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations"
DASHBOARD = ROOT / "docs" / "grafana" / "orchestrator.json"
#: what issue 19 asks the alerts to cover, by the alert that covers it
REQUIRED = {
    "error rate": "OrchestratorAPIErrors",
    "queue age": "OrchestratorQueueStale",
    "stuck runs": "OrchestratorRunsStuck",
    "database down": "OrchestratorDatabaseDown",
    "no worker": "OrchestratorNoWorker",
}


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a document's headings: lower case, punctuation dropped, spaces as '-'."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.fixture(scope="module")
def production(chart_dir: Path) -> list[Doc]:
    return render(chart_dir, VALUE_SETS["production"])


@pytest.fixture(scope="module")
def rules(production: list[Doc]) -> list[Doc]:
    return [r for g in one(production, "PrometheusRule", "orchestrator")["spec"]["groups"] for r in g["rules"]]


async def exported(api: Any, jp_fetch: Any) -> set[str]:
    """The sample names a test server's /orchestrator/metrics answers, after one request (so that the
    request series exist)."""
    assert (await api("GET", "agents")).status == 200
    reply = await jp_fetch("orchestrator", "metrics", headers={"Authorization": "token user:alice"})
    lines = reply.body.decode().splitlines()
    return {line.split("{")[0].split(" ")[0] for line in lines if line and not line.startswith("#")}


def test_the_alerts_cover_what_operators_must_know(rules: list[Doc]) -> None:
    names = {r["alert"] for r in rules}
    assert set(REQUIRED.values()) <= names, set(REQUIRED.values()) - names
    assert len(names) == len(rules), "an alert name twice"
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_every_alert_links_its_runbook(rules: list[Doc]) -> None:
    base = VALUE_SETS["production"].get("prometheusRule", {}).get("runbookBaseUrl", "docs/operations/")
    for rule in rules:
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(base), url
        page, _, anchor = url.removeprefix(base).partition("#")
        document = OPERATIONS / page
        assert document.is_file(), f"{rule['alert']}: no {document}"
        assert anchor == rule["alert"].lower()
        assert anchor in anchors(document.read_text()), f"{rule['alert']}: no heading #{anchor} in {page}"


def test_runbook_links_follow_the_base_url(chart_dir: Path) -> None:
    base = "https://git.example.com/ops/orchestrator/blob/v1/docs/operations/"
    values = {"prometheusRule": {"enabled": True, "runbookBaseUrl": base}}
    [rule] = find(render(chart_dir, values), "PrometheusRule")
    urls = {r["annotations"]["runbook_url"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert all(u.startswith(base + "runbooks.md#") for u in urls), urls


async def test_every_alert_queries_exported_metrics(rules: list[Doc], api: Any, jp_fetch: Any) -> None:
    names = await exported(api, jp_fetch)
    for rule in rules:
        queried = metric_names(rule["expr"])
        ours = {m for m in queried if m.startswith("orchestrator_")}
        assert ours or queried == {"up"}, f"{rule['alert']} watches no metric of the Orchestrator: {rule['expr']}"
        assert ours <= names, f"{rule['alert']} queries what no server exports: {ours - names}"


def test_the_chart_loads_the_dashboard_for_grafanas_sidecar(chart_dir: Path, production: list[Doc]) -> None:
    config_map = one(production, "ConfigMap", "orchestrator-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    [(key, text)] = config_map["data"].items()
    assert key.endswith(".json")
    assert json.loads(text) == json.loads(DASHBOARD.read_text()), "helm/dashboards/ differs from docs/grafana/"
    assert not find(render(chart_dir, {}), "ConfigMap", "orchestrator-dashboard")


def fenced(document: Path, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", document.read_text(), re.MULTILINE | re.DOTALL)


def test_the_runbooks_sql_runs_on_the_current_schema(admin_sql: Any) -> None:
    queries = fenced(OPERATIONS / "runbooks.md", "sql")
    assert len(queries) >= 4
    for query in queries:
        admin_sql(query)  # raises on a table or column that is not there


async def test_the_runbooks_promql_queries_exported_metrics(api: Any, jp_fetch: Any) -> None:
    names = await exported(api, jp_fetch)
    queries = fenced(OPERATIONS / "runbooks.md", "promql")
    assert queries
    for query in queries:
        assert metric_names(query) <= names, query


# ---- an alert firing, with no Prometheus here: its rule evaluated on a real server's scrape ------------


def _samples(exposition: str, target: dict[str, str]) -> list[tuple[str, dict[str, str], float]]:
    """The scrape's samples with the labels Prometheus adds through the chart's ServiceMonitor (``target``)."""
    from prometheus_client.parser import text_string_to_metric_families

    return [
        (s.name, {**s.labels, **target}, s.value)
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    ]


def _fires(expr: str, samples: list[tuple[str, dict[str, str], float]]) -> bool:
    """Whether ``<max|min|sum>(<selector>) <op> <number>`` holds on these samples (Prometheus's instant query);
    no matching sample is no result, so no alert. Other shapes raise: this is not a PromQL engine."""
    import operator

    import promql_parser

    tree = promql_parser.parse(expr)
    compare = {"<": operator.lt, ">": operator.gt, "==": operator.eq, "<=": operator.le, ">=": operator.ge}
    assert isinstance(tree, promql_parser.BinaryExpr), expr
    assert str(tree.op) in compare, expr
    assert isinstance(tree.rhs, promql_parser.NumberLiteral), expr
    aggregate, selector = tree.lhs, tree.lhs.expr
    assert isinstance(aggregate, promql_parser.AggregateExpr), expr
    assert str(aggregate.op) in ("max", "min", "sum"), expr
    assert isinstance(selector, promql_parser.VectorSelector), expr
    wanted = {(m.name, m.value) for m in selector.matchers.matchers}
    assert all(str(m.op) == "MatchOp.Equal" for m in selector.matchers.matchers), expr
    values = [v for name, labels, v in samples if name == selector.name and wanted <= set(labels.items())]
    if not values:
        return False
    value = {"max": max, "min": min, "sum": sum}[str(aggregate.op)](values)
    return bool(compare[str(tree.op)](value, tree.rhs.val))


async def test_a_stopped_worker_fires_the_no_worker_alert(rules: list[Doc], api: Any, jp_fetch: Any) -> None:
    """The test server runs no worker (as when every worker stopped): the chart's OrchestratorNoWorker
    expression holds on its scrape; with the one worker's connection counted, it does not."""
    [rule] = [r for r in rules if r["alert"] == "OrchestratorNoWorker"]
    selector = re.search(r"\{([^}]*)\}", rule["expr"])
    assert selector
    target = dict(re.findall(r'(\w+)="([^"]*)"', selector.group(1)))
    assert set(target) == {"namespace", "service"}  # what the ServiceMonitor's scrape adds
    reply = await jp_fetch("orchestrator", "metrics", headers={"Authorization": "token user:alice"})
    samples = _samples(reply.body.decode(), target)
    connected = [s for s in samples if s[0] == "orchestrator_workers_connected"]
    assert connected
    assert {value for _, _, value in connected} == {0.0}
    assert _fires(rule["expr"], samples)
    one_worker = [(n, labels, 1.0 if n == "orchestrator_workers_connected" else v) for n, labels, v in samples]
    assert not _fires(rule["expr"], one_worker)
    assert not _fires(rule["expr"], [s for s in samples if s[0] != "orchestrator_workers_connected"])
