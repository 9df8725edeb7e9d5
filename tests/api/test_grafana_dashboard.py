"""The Grafana dashboard in docs/grafana queries only metrics the server exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "orchestrator.json"
METRIC = re.compile(r"\b(orchestrator_[a-z_]+)")


async def test_every_panel_queries_an_exposed_metric(jp_fetch: Any, api: Any) -> None:
    assert (await api("GET", "agents")).status == 200  # so request series exist
    reply = await jp_fetch("orchestrator", "metrics", headers={"Authorization": "token user:alice"})
    exposed = reply.body.decode()
    names = {line.split("{")[0].split(" ")[0] for line in exposed.splitlines() if line and not line.startswith("#")}
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {m for panel in dashboard["panels"] for t in panel["targets"] for m in METRIC.findall(t["expr"])}
    assert queried
    assert queried <= names, queried - names
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for signal in ("traffic", "errors", "latency", "saturation"):
        assert signal in titles
