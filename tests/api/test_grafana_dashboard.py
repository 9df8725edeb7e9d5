"""The Grafana dashboard in docs/grafana queries only metrics the server exposes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.promql import metric_names

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "orchestrator.json"


async def test_every_panel_queries_an_exposed_metric(jp_fetch: Any, api: Any) -> None:
    assert (await api("GET", "agents")).status == 200  # so request series exist
    reply = await jp_fetch("orchestrator", "metrics", headers={"Authorization": "token user:alice"})
    exposed = reply.body.decode()
    names = {line.split("{")[0].split(" ")[0] for line in exposed.splitlines() if line and not line.startswith("#")}
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:  # each query parses, and names a metric (PromQL parser, not a regex)
        for target in panel["targets"]:
            queried = metric_names(target["expr"])
            assert queried, f"{panel['title']!r} queries no metric: {target['expr']}"
            assert queried <= names, f"{panel['title']!r} queries what the server does not expose: {queried - names}"
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for signal in ("traffic", "errors", "latency", "saturation"):
        assert signal in titles
