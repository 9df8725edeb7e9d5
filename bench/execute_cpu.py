"""The API server's CPU per ``POST /workflows/{id}/execute`` (issue 15: queued runs per second per server).

    python bench/execute_cpu.py [--runs 300] [--warmup 30]

One run, on 127.0.0.1 only: start ``jupyter orchestrator`` (personal mode, embedded PostgreSQL, a
throw-away data dir, no worker: runs stay queued, so only the API's work is measured, with the rate
limiter on and the organization on the enterprise tier), create a LangGraph-style workflow, then POST
``runs`` executions back to back on one keep-alive connection. It prints the server process's CPU time
per POST (user + system from /proc, before and after), the latency distribution and the load average.
This is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from harness import API, Processes, bench_env, distribution, set_tier
from startup import start_api

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` (not its children: the embedded PostgreSQL is another process)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-execute-") as tmp:
        root = Path(tmp)
        procs = Processes(env=bench_env(root), root=root)
        try:
            server = start_api(procs, "--OrchestratorApp.run_engine=False", "--OrchestratorApp.log_requests=False")
            client = server.client
            agent = client.call(
                "POST", f"{API}/agents", {"name": "bench-execute", "framework": "langgraph"}, expect=(201,)
            )
            spec = {"nodes": [{"id": "start", "type": "input", "config": {}}], "edges": []}
            workflow = client.call(
                "POST", f"{API}/agents/{agent['id']}/workflows", {"name": "trivial", "spec": spec}, expect=(201,)
            )
            set_tier(procs, agent["org_id"])
            path = f"{API}/workflows/{workflow['id']}/execute"
            for i in range(args.warmup):
                client.call("POST", path, {"inputs": {"i": i}}, expect=(202,))
            pid = server.process.process.pid
            seconds: list[float] = []
            before = cpu_seconds(pid)
            for i in range(args.runs):
                started = time.perf_counter()
                client.call("POST", path, {"inputs": {"i": i}}, expect=(202,))
                seconds.append(time.perf_counter() - started)
            used = cpu_seconds(pid) - before
            result = {
                "server_cpu_ms_per_post": round(1000 * used / args.runs, 2),
                "latency": {k: v for k, v in distribution(seconds).items() if k != "samples_ms"},
                "load_1min": os.getloadavg()[0],
            }
            print(json.dumps(result, indent=2))
        finally:
            procs.stop_all()


if __name__ == "__main__":
    main()
