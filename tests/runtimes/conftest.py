"""Fixtures of the runtime tests: a runs' database and run contexts (``local_model`` is in tests/conftest.py)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from orchestrator_runtimes.runtime import RunContext

from ..conftest import PgCluster

#: the frameworks must not phone home from the tests either
QUIET = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "AGNO_TELEMETRY": "false",
    "OTEL_SDK_DISABLED": "true",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGSMITH_TRACING": "false",
}
os.environ.update(QUIET)


@pytest.fixture(scope="module")
def state_url(pg_cluster: PgCluster) -> str:
    """A fresh runs' database (pgvector created), as the embedded server provisions it."""
    name = pg_cluster.new_database()
    with psycopg.connect(pg_cluster.admin_url(name), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return pg_cluster.admin_url(name)


@pytest.fixture
def run_context(tmp_path: Path) -> Callable[..., RunContext]:
    """``run_context(integrations=..., default_model=..., state_url=..., ...)``: a RunContext in a tmp workdir."""

    def make(**fields: Any) -> RunContext:
        fields.setdefault("execution_id", str(uuid.uuid4()))
        fields.setdefault("attempt", 1)
        fields.setdefault("workdir", tmp_path)
        fields.setdefault("files_root", tmp_path)
        return RunContext(**fields)

    return make
