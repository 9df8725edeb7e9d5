"""What tracing costs in imports: off, nothing of OpenTelemetry is imported at all; on, a run's process
imports nothing its fork server did not already import (``tracing.preload``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_without_an_endpoint_nothing_of_opentelemetry_is_imported() -> None:
    """Off costs nothing: the server's modules, the worker's and a run's import no OpenTelemetry at all."""
    code = (
        "import sys, orchestrator_ext.app, orchestrator_ext.engine.worker, orchestrator_runtimes.runner\n"
        "from orchestrator_ext import tracing\n"
        "assert tracing.setup() is False and tracing.traceparent() is None and tracing.job_trace() is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_traced_run_imports_nothing_its_fork_server_did_not() -> None:
    """What a traced run's process needs is imported by ``tracing.preload`` in the fork server, once for all runs.

    (``requests``, which the exporter no longer imports with itself, cost ~50 ms of every traced run.)
    """
    code = (
        "import io, json, sys\n"
        "from orchestrator_runtimes import tracing\n"
        "tracing.preload()\n"
        "before = set(sys.modules)\n"
        "parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'\n"
        "job = {'trace': {'traceparent': parent, 'endpoint': 'http://127.0.0.1:9/v1/traces'}, 'framework': 'x'}\n"
        "channel = tracing.traced_channel(job, io.StringIO())\n"
        "assert channel.__class__.__name__ == 'RunTrace'\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
