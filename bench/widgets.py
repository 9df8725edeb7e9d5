"""The widgets in a browser, one run: the builder with a 200-node, 300-edge workflow (time to
interactive, frame time while dragging a node) and the execution view (the lag between a step
finishing on the server and its node changing colour in the page).

    python bench/widgets.py [--nodes 200 --edges 300 --drag-steps 120 --steps 20 --step-seconds 0.3]

It starts ``jupyter orchestrator`` (personal mode: the API and Voila; startup.start_api, as every
benchmark does) and one worker in a temporary folder, saves the workflows through the API, opens
them in Voila in headless Chromium and prints JSON (also written to bench/results/widgets-<time>.json)
and a summary of the dashboard's figures (p50, p99, mean, the ratio, the load average).

- time to interactive: from the page's navigation to the canvas holding its nodes with the main
  thread free (two animation frames in a row under 50 ms apart); split into the Voila page and
  kernel (until the widget's element exists) and the widget's own render (dagre layout, React Flow).
- drag frame time: for each pointer move of a node drag, the main-thread time from the event to
  the end of the frame that shows it (the event's handler, React's render, style, layout, paint),
  measured in the page; target p95 < 16 ms.
- step-to-colour lag: a chain of code nodes that each sleep; for each step, the page's clock when
  its node turned "done" (a MutationObserver) minus the step event's ``created_at`` on the server
  (same machine, same clock); target p95 < 250 ms.
- dashboard first paint: from navigation to the dashboard's counts drawn, against a bare Voila
  notebook with one ipywidgets HTML widget (``--paints`` alternating loads; p50, p99, mean of each and
  the ratio of the p50s); target ≤ 1.5×.
- dashboard update lag: runs started through the API while the dashboard is open; for each status
  change (queued, running, succeeded), the page's clock when a row showed it minus the status
  event's ``created_at``; target p95 ≤ 1 s. ``--dashboard-only`` skips the builder's measures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat
from harness import (
    API,
    Client,
    Processes,
    bench_env,
    distribution,
    timestamp,
    wait_for,
)
from playwright.sync_api import Page, sync_playwright
from startup import FORK_SERVER_READY, STARTED, framework_worker, start_api, start_worker

OFF_MACHINE = re.compile(r"^(https?|wss?)://(?!(127\.0\.0\.1|localhost)[:/])")
RESULTS = Path(__file__).parent / "results"

# the page's side of the drag measure: each pointermove's start, closed by a message posted from the
# next animation frame's callback: the message runs once that frame's rendering work is done
FRAME_PROBE = """
window.__frames = [];
window.addEventListener('pointermove', (event) => {
  if (!window.__dragging) return;
  const start = performance.now();
  requestAnimationFrame(() => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => window.__frames.push(performance.now() - start);
    channel.port2.postMessage(0);
  });
}, true);
"""
COLOUR_PROBE = """
window.__turned = {};
new MutationObserver((records) => {
  for (const r of records) {
    const el = r.target;
    if (el.dataset && el.dataset.state === 'done' && !(el.dataset.nodeId in window.__turned)) {
      window.__turned[el.dataset.nodeId] = Date.now() / 1000;
    }
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-state'], childList: true });
"""


def big_spec(nodes: int, edges: int) -> dict[str, Any]:
    """A chain of code nodes plus skip edges (i -> i+2, ...) up to ``edges``: a DAG the builder lays out."""
    spec_nodes = [{"id": "start", "type": "input", "config": {}}]
    spec_nodes += [
        {"id": f"n{i}", "type": "code", "config": {"source": "def run(values):\n    return 1"}} for i in range(1, nodes)
    ]
    ids = [node["id"] for node in spec_nodes]
    spec_edges = [{"source": a, "target": b} for a, b in itertools.pairwise(ids)]
    gap = 2
    while len(spec_edges) < edges:
        for i in range(0, len(ids) - gap, 3):
            if len(spec_edges) >= edges:
                break
            spec_edges.append({"source": ids[i], "target": ids[i + gap]})
        gap += 1
    return {"nodes": spec_nodes, "edges": spec_edges}


def chain_spec(steps: int, seconds: float) -> dict[str, Any]:
    source = f"def run(values):\n    import time\n    time.sleep({seconds})\n    return 1"
    nodes = [{"id": "start", "type": "input", "config": {}}]
    nodes += [{"id": f"s{i}", "type": "code", "config": {"source": source}} for i in range(1, steps + 1)]
    ids = [node["id"] for node in nodes]
    return {"nodes": nodes, "edges": [{"source": a, "target": b} for a, b in itertools.pairwise(ids)]}


def notebook(root: Path, name: str, source: str) -> str:
    document: Any = nbformat.v4.new_notebook()
    document.cells = [nbformat.v4.new_code_cell(source)]
    document.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(document, root / name)
    return name


def interactive(page: Page) -> None:
    """Wait until two animation frames in a row come under 50 ms apart (no long task in between)."""
    page.evaluate(
        """() => new Promise((done) => {
          let last = performance.now();
          const tick = (now) => { if (now - last < 50) done(); else { last = now; requestAnimationFrame(tick); } };
          requestAnimationFrame(tick);
        })"""
    )


def measure_builder(page: Page, url: str, nodes: int, drag_steps: int) -> dict[str, Any]:
    page.add_init_script(FRAME_PROBE)
    started = time.perf_counter()
    page.goto(url, timeout=180_000)
    page.locator(".ow-root").wait_for(timeout=180_000)
    widget = time.perf_counter()
    page.locator(".react-flow__node").first.wait_for(timeout=120_000)
    interactive(page)
    ready = time.perf_counter()
    rendered = page.locator(".react-flow__node").count()
    target = page.locator(".react-flow__node").nth(min(3, rendered - 1))
    box = target.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.evaluate("() => { window.__dragging = true; }")
    for step in range(drag_steps):
        page.mouse.move(x + (step % 60) * 3, y + (step % 40) * 2)
    page.evaluate("() => { window.__dragging = false; }")
    page.mouse.up()
    page.wait_for_timeout(300)
    frames = [value / 1000 for value in page.evaluate("() => window.__frames")]
    drag = distribution(frames)
    ms = sorted(drag.get("samples_ms", []))
    drag["p95_ms"] = ms[max(0, -(-95 * len(ms) // 100) - 1)] if ms else None
    return {
        "nodes_in_spec": nodes,
        "nodes_rendered": rendered,
        "time_to_interactive_s": round(ready - started, 2),
        "page_and_kernel_s": round(widget - started, 2),
        "widget_render_s": round(ready - widget, 2),
        "drag_frame": drag,
    }


def measure_colour_lag(page: Page, url: str, client: Client, workflow_id: str) -> dict[str, Any]:
    """Run the chain from the builder's Run button and watch its nodes turn done in the Run tab."""
    page.add_init_script(COLOUR_PROBE)
    page.goto(url, timeout=180_000)
    page.locator(".ow-valid").wait_for(timeout=180_000)
    page.get_by_role("button", name="Run…").click()
    page.get_by_role("button", name="Start the run").click()
    page.locator(".ow-execution .ow-status-succeeded").wait_for(timeout=300_000)
    turned: dict[str, float] = page.evaluate("() => window.__turned")
    [run] = client.call("GET", f"{API}/executions?workflow_id={workflow_id}&limit=1")["items"]
    finished = {}
    for event, _ in client.events(run["id"]):
        if event["kind"] == "step":
            finished[event["data"]["node"]] = timestamp(event["created_at"])
    lags = [turned[node] - at for node, at in finished.items() if node in turned and node != "start"]
    lag = distribution(lags)
    ms = sorted(lag.get("samples_ms", []))
    lag["p95_ms"] = ms[max(0, -(-95 * len(ms) // 100) - 1)] if ms else None
    lag["steps_seen"] = f"{len(lags)} of {len(finished) - 1}"
    return lag


STATUS_PROBE = """
window.__statuses = {};
const seen = (el) => {
  const key = el.dataset.executionId + ' ' + el.dataset.status;
  if (!(key in window.__statuses)) window.__statuses[key] = Date.now() / 1000;
};
new MutationObserver((records) => {
  for (const r of records) {
    const found = r.type === 'attributes' ? [r.target] : [...r.addedNodes];
    for (const el of found) {
      if (!(el instanceof Element)) continue;
      if (el.dataset && el.dataset.executionId) seen(el);
      el.querySelectorAll?.('tr[data-execution-id]').forEach(seen);
    }
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-status'], childList: true });
"""


def first_paint(page: Page, url: str, selector: str) -> float:
    started = time.perf_counter()
    page.goto(url, timeout=180_000)
    page.locator(selector).first.wait_for(timeout=180_000)
    return time.perf_counter() - started


def measure_dashboard_paint(context: Any, base: str, token: str, root: Path, paints: int) -> dict[str, Any]:
    """Alternate a bare one-widget notebook and the dashboard; their first paints' distributions and ratio."""
    bare = notebook(root, "bare.ipynb", "import ipywidgets\nipywidgets.HTML('<p class=\"bare\">hello</p>')")
    board = notebook(root, "board.ipynb", "from orchestrator_widgets import Dashboard\nDashboard()")
    times: dict[str, list[float]] = {"bare": [], "dashboard": []}
    for _ in range(paints):
        for name, selector in (("bare", ".bare"), ("dashboard", ".ow-dashboard .count-succeeded")):
            page = context.new_page()
            times[name].append(first_paint(page, f"{base}/{bare if name == 'bare' else board}?token={token}", selector))
            print(f"first paint of {name}: {times[name][-1]:.2f} s", file=sys.stderr)
            page.close()
    bare_paint, board_paint = distribution(times["bare"]), distribution(times["dashboard"])
    return {
        "bare_voila": bare_paint,
        "dashboard": board_paint,
        "ratio_p50": round(board_paint["p50_ms"] / bare_paint["p50_ms"], 2),
        "ratio_mean": round(board_paint["mean_ms"] / bare_paint["mean_ms"], 2),
    }


def measure_dashboard_lag(
    page: Page, url: str, client: Client, workflow_id: str, runs: int, server: Any
) -> dict[str, Any]:
    """Start runs through the API with the dashboard open; the lag of each status it showed."""
    page.add_init_script(STATUS_PROBE)
    page.goto(url, timeout=180_000)
    page.locator(".ow-dashboard .count-succeeded").wait_for(timeout=180_000)
    started = []
    for _ in range(runs):
        run = client.call("POST", f"{API}/workflows/{workflow_id}/execute", {"inputs": {}}, expect=(202,))
        started.append(run["id"])
        done = lambda rid=run["id"]: client.call("GET", f"{API}/executions/{rid}")["status"] == "succeeded"  # noqa: E731
        wait_for(done, "a run to succeed", server)
    page.wait_for_timeout(1500)
    shown: dict[str, float] = page.evaluate("() => window.__statuses")
    lags, changes = [], 0
    for run_id in started:
        for event, _ in client.events(run_id):
            if event["kind"] != "status":
                continue
            changes += 1
            key = f"{run_id} {event['data']['status']}"
            if key in shown:
                lags.append(shown[key] - timestamp(event["created_at"]))
    lag = distribution(lags)
    ms = sorted(lag.get("samples_ms", []))
    lag["p95_ms"] = ms[max(0, -(-95 * len(ms) // 100) - 1)] if ms else None
    lag["changes_seen"] = f"{len(lags)} of {changes}"
    return lag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--edges", type=int, default=300)
    parser.add_argument("--drag-steps", type=int, default=120)
    parser.add_argument("--steps", type=int, default=20, help="code nodes of the run watched for colour lag")
    parser.add_argument("--step-seconds", type=float, default=0.3, help="how long each of those steps sleeps")
    parser.add_argument("--paints", type=int, default=3, help="first paints of the dashboard and of a bare notebook")
    parser.add_argument("--runs", type=int, default=10, help="runs whose status changes the dashboard shows")
    parser.add_argument("--dashboard-only", action="store_true", help="skip the builder's measures")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-widgets-"))
    procs = Processes(bench_env(root), root)
    results: dict[str, Any] = {"args": vars(args), "when": datetime.now(UTC).isoformat()}
    try:
        # the server (API and Voila) as every benchmark starts it, and one worker beside it for the runs the
        # dashboard follows (framework runs, a fork server preloading LangGraph)
        server = start_api(procs, "--OrchestratorApp.local_model=False")
        start_worker(procs, "worker", *framework_worker("langgraph"), ready=(STARTED, FORK_SERVER_READY))
        port, token, client = server.port, server.token, server.client
        agent = client.call("POST", f"{API}/agents", {"name": "Bench", "framework": "langgraph"}, expect=(201,))
        big = client.call(
            "POST",
            f"{API}/agents/{agent['id']}/workflows",
            {"name": "Big", "spec": big_spec(args.nodes, args.edges)},
            expect=(201,),
        )
        chain = client.call(
            "POST",
            f"{API}/agents/{agent['id']}/workflows",
            {"name": "Chain", "spec": chain_spec(args.steps, args.step_seconds)},
            expect=(201,),
        )
        builder = notebook(
            root, "big.ipynb", f"from orchestrator_widgets import Builder\nBuilder(workflow_id={big['id']!r})"
        )
        base = f"http://127.0.0.1:{port}/voila/render"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium")
            context = browser.new_context(viewport={"width": 1500, "height": 1000})
            context.route(OFF_MACHINE, lambda route: route.abort())
            if not args.dashboard_only:
                results["builder"] = measure_builder(
                    context.new_page(), f"{base}/{builder}?token={token}", args.nodes, args.drag_steps
                )
                watched = notebook(
                    root,
                    "chain.ipynb",
                    f"from orchestrator_widgets import Builder\nBuilder(workflow_id={chain['id']!r})",
                )
                results["step_to_colour"] = measure_colour_lag(
                    context.new_page(), f"{base}/{watched}?token={token}", client, chain["id"]
                )
            results["dashboard_first_paint"] = measure_dashboard_paint(context, base, token, root, args.paints)
            quick = client.call(
                "POST",
                f"{API}/agents/{agent['id']}/workflows",
                {"name": "Quick", "spec": chain_spec(2, 0.2)},
                expect=(201,),
            )
            board = f"{base}/board.ipynb?token={token}"
            results["dashboard_update_lag"] = measure_dashboard_lag(
                context.new_page(), board, client, quick["id"], args.runs, server.process
            )
            browser.close()
    finally:
        procs.stop_all()
        shutil.rmtree(root, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"widgets-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(results, indent=2))
    json.dump(results, sys.stdout, indent=2)
    print()
    print(summary(results))


def summary(results: dict[str, Any]) -> str:
    """The dashboard's figures in a few lines: p50, p99 and mean of each, the ratio, the lag's p95."""
    lines = []
    paint = results.get("dashboard_first_paint")
    if paint:
        for name in ("bare_voila", "dashboard"):
            d = paint[name]
            lines.append(
                f"first paint {name}: p50 {d['p50_ms']} ms, p99 {d['p99_ms']} ms, mean {d['mean_ms']} ms (n={d['n']})"
            )
        lines.append(
            f"first paint ratio (dashboard / bare, p50): {paint['ratio_p50']} "
            f"(mean: {paint['ratio_mean']}; target <= 1.5)"
        )
    lag = results.get("dashboard_update_lag")
    if lag and lag.get("n"):
        lines.append(
            f"update lag: p50 {lag['p50_ms']} ms, p95 {lag['p95_ms']} ms, p99 {lag['p99_ms']} ms, "
            f"mean {lag['mean_ms']} ms ({lag['changes_seen']} changes; target p95 <= 1000 ms)"
        )
    lines.append(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
