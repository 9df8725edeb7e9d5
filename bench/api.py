"""Throughput and latency of the orchestrator API against the ceiling of a bare jupyter-server handler.

    python bench/api.py [--duration 8] [--warmup 2] [--concurrency 8]

One run, on 127.0.0.1 only: start ``jupyter orchestrator`` (personal mode,
embedded PostgreSQL, a throw-away data dir) with the ceiling extension of
``bench/ceiling_ext.py``; seed 10,000 agents and 100,000 executions in one
organization straight through the embedded server's socket; then drive each
endpoint with ``bench/loadgen.py`` (another process, keep-alive connections,
warm-up first) and print requests per second, p50 and p99 latency, and each
endpoint's throughput as a share of the ceiling. Results also go to
``bench/results/api.json``. This is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from harness import API, Processes, bench_env, load_scenario
from orchestrator_runtimes.forkserver import die_with_parent
from startup import start_api

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "api.json"
LIST_RATIO_TARGET = 0.40
P99_TARGET_MS = 20.0

STATUS_MIX = ["succeeded"] * 12 + ["failed"] * 3 + ["cancelled"] * 2 + ["timed_out", "running", "queued"]


@dataclass
class Server:
    port: int
    token: str
    data_dir: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url(path), data=data, method=method)
        request.add_header("Authorization", f"token {self.token}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def admin_url(self) -> str:
        """The embedded server's superuser URL (its socket and the password it keeps in the data dir)."""
        from orchestrator_ext.db.embedded import superuser_url

        return superuser_url(self.data_dir)


@contextlib.contextmanager
def running_server(root: Path, request_log: bool, rate_limits: bool = False) -> Iterator[Server]:
    """The personal mode (its own worker) with the ceiling extension, started as every benchmark starts its
    server (``startup.start_api``); it and what it started (the embedded PostgreSQL) stopped at the end."""
    pythonpath = os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH")]))  # ceiling_ext
    procs = Processes(env=bench_env(root, {"PYTHONPATH": pythonpath}), root=root)
    # with --rate-limits the limiter runs on every write but never refuses (its cost, not its refusals)
    limits = (
        ("--OrchestratorApp.rate_limits=True", "--OrchestratorApp.user_writes_per_minute=1000000000")
        if rate_limits
        else ("--OrchestratorApp.rate_limits=False",)
    )
    try:
        started = start_api(
            procs,
            "--OrchestratorApp.run_engine=True",
            "--ServerApp.jpserver_extensions=ceiling_ext=True",
            f"--OrchestratorApp.log_requests={request_log}",
            *limits,
        )
        started.client.close()  # this benchmark calls through urllib and loadgen.py
        yield Server(port=started.port, token=started.token, data_dir=root / "data")
    finally:
        procs.stop_all()


SEED_SQL = """
UPDATE organizations SET max_agents = 10000000 WHERE id = %(org)s;

INSERT INTO agents (id, org_id, name, framework, description, created_by, created_at, updated_at)
SELECT gen_random_uuid(), %(org)s, 'seed-agent-' || i,
       (ARRAY['langgraph', 'crewai', 'agno', 'n8n', 'notebook'])[1 + i %% 5], 'seeded by bench/api.py',
       %(user)s, now() - make_interval(secs => i), now() - make_interval(secs => i)
FROM generate_series(1, %(agents)s) AS i;

INSERT INTO workflows (id, org_id, agent_id, name, created_by)
SELECT gen_random_uuid(), org_id, id, 'seed-workflow-' || name, created_by
FROM agents WHERE org_id = %(org)s AND name IN (SELECT 'seed-agent-' || i FROM generate_series(1, 10) AS i);

INSERT INTO workflow_versions (id, org_id, workflow_id, version, spec, created_by)
SELECT gen_random_uuid(), org_id, id, 1, '{"nodes": [], "edges": []}'::jsonb, created_by
FROM workflows WHERE org_id = %(org)s;

WITH v AS (
    SELECT wv.id AS version_id, w.id AS workflow_id, w.agent_id,
           (row_number() OVER (ORDER BY w.id)) - 1 AS k, count(*) OVER () AS n
    FROM workflow_versions wv JOIN workflows w ON w.id = wv.workflow_id
    WHERE w.org_id = %(org)s
), s AS (
    SELECT i, (%(statuses)s::text[])[1 + i %% cardinality(%(statuses)s::text[])] AS status,
           now() - make_interval(secs => i) AS at
    FROM generate_series(1, %(executions)s) AS i
)
INSERT INTO workflow_executions (
    id, org_id, agent_id, workflow_id, workflow_version_id, version, status, trigger, inputs, attempt,
    created_by, created_at, updated_at, started_at, finished_at)
SELECT gen_random_uuid(), %(org)s, v.agent_id, v.workflow_id, v.version_id, 1, s.status, 'api', '{}'::jsonb,
       CASE WHEN s.status = 'queued' THEN 0 ELSE 1 END, %(user)s, s.at, s.at,
       CASE WHEN s.status = 'queued' THEN NULL ELSE s.at END,
       CASE WHEN s.status IN ('queued', 'running') THEN NULL ELSE s.at + interval '2 seconds' END
FROM s JOIN v ON v.k = s.i %% v.n;
"""


def seed(server: Server, agents: int, executions: int) -> dict[str, Any]:
    """One agent through the API (it creates the user and the personal organization), the rest in SQL."""
    first = server.call("POST", f"{API}/agents", {"name": "bench-first", "framework": "langgraph"})
    org_id, user_id = first["org_id"], first["created_by"]
    started = time.perf_counter()
    with psycopg.connect(server.admin_url(), autocommit=False) as conn:
        params = {
            "org": org_id,
            "user": user_id,
            "agents": agents - 1,
            "executions": executions,
            "statuses": STATUS_MIX,
        }
        for statement in SEED_SQL.split(";\n\n"):
            conn.execute(statement, params)
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM agents WHERE org_id = %(org)s),"
            " (SELECT count(*) FROM workflow_executions WHERE org_id = %(org)s)",
            {"org": org_id},
        ).fetchone()
    assert counts is not None
    return {"org_id": org_id, "agents": counts[0], "executions": counts[1], "seconds": time.perf_counter() - started}


def measure(server: Server, args: argparse.Namespace, method: str, path: str, **extra: Any) -> dict[str, Any]:
    scenario = load_scenario(server.port, server.token, method, path, args, **extra)
    done = subprocess.run(
        [sys.executable, str(BENCH / "loadgen.py"), json.dumps(scenario)],
        capture_output=True,
        text=True,
        check=True,
        timeout=args.warmup + args.duration + 60,
        preexec_fn=die_with_parent,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    if result["errors"]:
        print(f"  !! {result['errors']} unexpected responses, first: {result['first_error']}")
    return result


def verdicts(name: str, result: dict[str, Any], ceiling_rps: float, is_list: bool) -> dict[str, Any]:
    """The issue's targets are for the list endpoints; other endpoints are reported without a verdict."""
    ratio = result["rps"] / ceiling_rps if ceiling_rps else 0.0
    checks: dict[str, bool] = {}
    if is_list:
        checks["p99_under_20ms"] = result["p99_ms"] < P99_TARGET_MS and not result["errors"]
        checks["ratio_at_least_40pct"] = ratio >= LIST_RATIO_TARGET
    return {"name": name, **result, "ratio": round(ratio, 3), "targets": checks}


def report(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'endpoint':<46}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'ratio':>8}  targets")
    for row in rows:
        marks = "  ".join(f"{k}={'PASS' if ok else 'FAIL'}" for k, ok in row.get("targets", {}).items())
        ratio = f"{row['ratio'] * 100:.0f}%" if "ratio" in row else ""
        latency = f"{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['mean_ms']:>9.2f}"
        print(f"{row['name']:<46}{row['rps']:>9.0f}{latency}{ratio:>8}  {marks}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per endpoint")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per endpoint")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument(
        "--request-log", action=argparse.BooleanOptionalAction, default=True, help="OrchestratorApp.log_requests"
    )
    parser.add_argument(
        "--rate-limits",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="run the rate limiter on every write (limits too high to refuse): its cost on POST /agents",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp,
        running_server(Path(tmp), args.request_log, args.rate_limits) as srv,
    ):
        print(f"server on 127.0.0.1:{srv.port}, up in {time.perf_counter() - started:.1f} s; seeding...")
        seeded = seed(srv, args.agents, args.executions)
        print(f"seeded {seeded['agents']} agents, {seeded['executions']} executions in {seeded['seconds']:.1f} s")
        org = seeded["org_id"]
        print("measuring the ceiling ...")
        ceiling_before = measure(srv, args, "GET", "/bench/ceiling")
        print("measuring GET /agents ...")
        agents = measure(srv, args, "GET", f"{API}/agents?org_id={org}&limit=50")
        print("measuring GET /executions ...")
        executions = measure(srv, args, "GET", f"{API}/executions?status=succeeded&limit=50")
        print("measuring POST /agents ...")
        body = json.dumps({"name": f"bench-{secrets.token_hex(4)}-{{n}}", "framework": "langgraph"})
        create = measure(srv, args, "POST", f"{API}/agents", body=body, expect=201)
        print("measuring the ceiling again ...")
        ceiling_after = measure(srv, args, "GET", "/bench/ceiling")
    ceiling_rps = (ceiling_before["rps"] + ceiling_after["rps"]) / 2
    ceiling = {"name": "ceiling: constant JSON handler (mean of 2)", **ceiling_before, "rps": ceiling_rps}
    rows = [
        ceiling,
        verdicts("GET /agents?org_id=&limit=50 (10k agents)", agents, ceiling_rps, is_list=True),
        verdicts("GET /executions?status=succeeded&limit=50 (100k)", executions, ceiling_rps, is_list=True),
        verdicts("POST /agents (no target: not a list)", create, ceiling_rps, is_list=False),
    ]
    report(rows)
    passed = all(all(row.get("targets", {}).values()) for row in rows)
    targets = f"list endpoints >= {LIST_RATIO_TARGET:.0%} of the ceiling, p99 < {P99_TARGET_MS:.0f} ms"
    print(f"\ntargets ({targets}): {'PASS' if passed else 'FAIL'}")
    print(f"whole run: {time.perf_counter() - started:.0f} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "settings": vars(args),
                "cpus": os.cpu_count(),
                "seeded": seeded,
                "ceiling_runs": [ceiling_before, ceiling_after],
                "results": rows,
                "passed": passed,
            },
            indent=2,
        )
    )
    print(f"written to {RESULTS.relative_to(BENCH.parent)}")


if __name__ == "__main__":
    main()
