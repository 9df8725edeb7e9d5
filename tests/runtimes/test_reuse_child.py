"""A fork server's child serving several jobs of one connection (``process.runs`` > 1, engine/reuse.py): each
job's output is its own, the environment is put back, the organization's edited module is imported afresh,
and the child exits after its runs or at the hang-up."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fork_servers import running_fork_server

#: a node that prints, reads what an earlier run left in the environment and calls the organization's code
SPEC = {
    "nodes": [
        {"id": "probe", "type": "code", "config": {"callable": "reused_module:probe"}},
    ],
    "edges": [],
}
MODULE = """import os
def probe(values):
    print("printed by run", os.environ.get("RUN"))
    left = os.environ.get("LEFT_BY_A_RUN", "")
    os.environ["LEFT_BY_A_RUN"] = "yes"
    return {{"pid": os.getpid(), "version": {version}, "left": left}}
"""


@pytest.fixture
def fork_server(tmp_path: Path) -> Iterator[Path]:
    with running_fork_server(tmp_path, "langgraph") as (_, path):
        yield path


def job(tmp_path: Path, index: int, runs: int) -> bytes:
    workdir = tmp_path / f"run-{index}"
    (workdir / "tmp").mkdir(parents=True)
    body = {
        "framework": "langgraph",
        "spec": SPEC,
        "inputs": {},
        "execution_id": f"run-{index}",
        "files_root": str(tmp_path / "files"),
        "process": {"workdir": str(workdir), "runs": runs},
    }
    return json.dumps(body).encode() + b"\n"


def one_run(conn: socket.socket, lines: Any, payload: bytes) -> list[dict[str, Any]]:
    conn.sendall(payload)
    messages = []
    while line := lines.readline():
        messages.append(json.loads(line))
        if {"result", "error", "waiting"} & messages[-1].keys():
            break
    return messages


def test_a_child_serves_its_runs_one_after_another_each_afresh(fork_server: Path, tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    results = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(fork_server))
        lines = conn.makefile("rb")
        for index in range(3):
            (files / "reused_module.py").write_text(MODULE.format(version=index))
            os.utime(files / "reused_module.py", (index * 100, index * 100))  # a pyc of the last version is stale
            messages = one_run(conn, lines, job(tmp_path, index, runs=3))
            assert "result" in messages[-1], messages
            logs = [m["data"]["text"] for m in messages if m.get("event") == "log"]
            assert logs == ["printed by run None\n"], messages  # its own output, every time
            results.append(messages[-1]["result"]["outputs"]["output"])
        assert lines.readline() == b""  # three runs served: the child exited
    assert len({result["pid"] for result in results}) == 1
    assert [result["version"] for result in results] == [0, 1, 2]  # the edited module imported afresh
    assert [result["left"] for result in results] == ["", "", ""]  # the environment put back


def test_without_runs_a_child_serves_one_job(fork_server: Path, tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "reused_module.py").write_text(MODULE.format(version=0))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(fork_server))
        lines = conn.makefile("rb")
        assert "result" in one_run(conn, lines, job(tmp_path, 0, runs=1))[-1]
        assert lines.readline() == b""  # used once, as by default


#: an inline node that makes an HTTP request with httpx (its instrumentation makes a client span of it)
CALLS_OUT = """def run(values):
    import httpx
    httpx.post(values["url"], content=b"")
    return {"called": True}
"""


def traced_job(tmp_path: Path, index: int, endpoint: str) -> tuple[bytes, str]:
    """A traced job (its own trace) of an inline node calling out; the trace's id."""
    workdir = tmp_path / f"traced-{index}"
    (workdir / "tmp").mkdir(parents=True)
    trace_id = f"{index + 1:032x}"
    spec = {"nodes": [{"id": "call", "type": "code", "config": {"source": CALLS_OUT}}], "edges": []}
    body = {
        "framework": "langgraph",
        "spec": spec,
        "inputs": {"url": f"{endpoint}/elsewhere"},
        "execution_id": f"traced-{index}",
        "trace": {"traceparent": f"00-{trace_id}-{index + 1:016x}-01", "endpoint": f"{endpoint}/v1/traces"},
        "process": {"workdir": str(workdir), "runs": 2},
    }
    return json.dumps(body).encode() + b"\n", trace_id


def test_each_run_of_a_process_sends_its_own_spans(fork_server: Path, tmp_path: Path) -> None:
    from tests.otlp_receiver import OtlpReceiver

    with OtlpReceiver() as receiver, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(fork_server))
        lines = conn.makefile("rb")
        traces, logs = [], []
        for index in range(2):
            payload, trace_id = traced_job(tmp_path, index, receiver.endpoint)
            messages = one_run(conn, lines, payload)
            assert "result" in messages[-1], messages
            traces.append(trace_id)
            logs += [m["data"]["text"] for m in messages if m.get("event") == "log"]
        assert lines.readline() == b""
        for trace_id in traces:  # each run's own span, and its HTTP request's under it, in its own trace
            spans = receiver.trace(trace_id)
            [run] = [span for span in spans if span.name == "run langgraph"]
            [http] = [span for span in spans if span.kind == "client"]
            assert http.trace_id == run.trace_id
        assert not [text for text in logs if "instrument" in text], logs


def cache_key(spec: dict[str, Any], integrations: dict[str, Any], default_model: str | None = "m") -> str | None:
    from orchestrator_runtimes.langgraph import cache
    from orchestrator_runtimes.runtime import RunContext
    from orchestrator_runtimes.spec import WorkflowSpec

    context = RunContext("run", 1, Path("/nowhere"), integrations=integrations, default_model=default_model)
    return cache.key_of(WorkflowSpec.model_validate(spec), None, context)


def test_a_kept_graph_is_keyed_by_all_it_is_built_from(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator_runtimes import reuse

    inline = {"nodes": [{"id": "a", "type": "code", "config": {"source": CALLS_OUT}}], "edges": []}
    model = {"m": {"kind": "openai", "api_key": "one", "base_url": "http://127.0.0.1:9/v1"}}
    assert cache_key(inline, model) is None  # a process serving one run keeps nothing
    monkeypatch.setattr(reuse, "_serving_many", True)
    key = cache_key(inline, model)
    assert key is not None
    assert cache_key(inline, model) == key
    assert cache_key(inline, {"m": {**model["m"], "api_key": "two"}}) != key  # a changed secret: built afresh
    assert cache_key(inline, {"m": {**model["m"], "base_url": "http://127.0.0.1:8/v1"}}) != key
    assert cache_key(inline, model, default_model="n") != key
    called = {"id": "b", "type": "code", "config": {"callable": "mine:run"}}
    assert cache_key({"nodes": [called], "edges": []}, model) is None  # code from the files: never kept
    nested = {
        "id": "s",
        "type": "subgraph",
        "config": {
            "nodes": [{"id": "in", "type": "subgraph", "config": {"nodes": [called], "edges": []}}],
            "edges": [],
        },
    }
    assert cache_key({"nodes": [nested], "edges": []}, model) is None  # at any depth
    tool = {"id": "t", "type": "tool", "config": {"callable": "mine:tool"}}
    assert cache_key({"nodes": [tool], "edges": []}, model) is None
