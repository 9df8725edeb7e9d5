"""What the team-mode attack suite (test_run_isolation.py) runs and how it talks to the hub: the probe B's
runs execute (each attempt's errno name, or "allowed") and the API calls that start runs and read what they
reported."""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any

import psutil
import requests

from tests.hub.team_hub import Person, TeamHub

RUN_TIMEOUT_S = 120.0

# What B's runs execute: each attempt's errno name, or "allowed".
PROBE = r"""
import ctypes, errno, json, os, signal, socket

def _outcome(action):
    try:
        action()
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return "allowed"

def _connect(path):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)

def _read(path):
    with open(path, "rb") as handle:
        handle.read(1)

def _ptrace(pid):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(16, pid, None, None) != 0:  # PTRACE_ATTACH
        raise OSError(ctypes.get_errno(), "ptrace")
    libc.ptrace(17, pid, None, None)

def _plant(folder):
    target = os.path.join(folder, "kernels", "python3")
    os.makedirs(target, exist_ok=True)
    argv = ["/bin/sh", "-c", "touch " + MARKER + "; exec python3 -m ipykernel_launcher -f {connection_file}"]
    with open(os.path.join(target, "kernel.json"), "w") as handle:
        json.dump({"argv": argv, "display_name": "Python 3", "language": "python"}, handle)

def _runs_db(t):
    # framework runs have their organization's runs' database URL (their fork server's environment)
    url = os.environ.get("ORCHESTRATOR_RUNS_DATABASE_URL")
    if not url:
        return {"own": None}
    import psycopg
    own = url.split("?")[0].rsplit("/", 1)[1]
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS mine (n int)")
    try:
        psycopg.connect(url.replace("/" + own + "?", "/" + t["a_runs_db"] + "?")).close()
        other = "allowed"
    except psycopg.OperationalError as exc:
        other = " ".join(str(exc).split())
    return {"own": own, "a": other}

def _cmdlines():
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                found.append(handle.read().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass
    return "\n".join(found)

def probe(t):
    from jupyter_core.paths import jupyter_path
    seen = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "environ": dict(os.environ)}
    seen["pg_socket"] = _outcome(lambda: _connect(t["pg_socket"]))
    seen["runs_db"] = _runs_db(t)
    seen["cmdlines"] = _cmdlines()
    for name in ("pgdata", "service_dir", "hub_dir", "runs_dir", "a_workdir"):
        seen[name] = _outcome(lambda: os.listdir(t[name]))
    for name in ("keys", "a_connection"):
        seen[name] = _outcome(lambda: _read(t[name]))
    for name, pid in t["pids"].items():
        seen["environ:" + name] = _outcome(lambda: _read(f"/proc/{pid}/environ"))
        seen["mem:" + name] = _outcome(lambda: _read(f"/proc/{pid}/mem"))
        seen["cwd:" + name] = _outcome(lambda: os.readlink(f"/proc/{pid}/cwd"))
    a_kernel = t["pids"]["a_kernel"]
    seen["kill:a_kernel"] = _outcome(lambda: os.kill(a_kernel, signal.SIGKILL))
    seen["ptrace:a_kernel"] = _outcome(lambda: _ptrace(a_kernel))
    home = os.path.realpath(os.environ["HOME"])
    for folder in sorted({*jupyter_path(), t["service_jupyter"]}):
        where = "own" if os.path.realpath(folder).startswith(home) else "shared"
        seen[f"kernelspec:{where}:{folder}"] = _outcome(lambda: _plant(folder))
    return seen
"""

NOTEBOOK_PROBE = PROBE + "\nprint('PROBE ' + json.dumps(probe(TARGETS)))\n"
LANGGRAPH_PROBE = PROBE + "\ndef run(values):\n    return json.dumps(probe(TARGETS))\n"
AGNO_PROBE = (
    PROBE + "\ndef build(inputs):\n    print('PROBE ' + json.dumps(probe(TARGETS)), flush=True)\n    return None\n"
)


def api(hub: TeamHub, person: Person, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(
        method, f"{hub.api_url}/{path}", headers=person.headers, json=body, timeout=60, verify=hub.ssl_verify
    )


def ok(response: requests.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code} {response.text[-3000:]}"
    return response.json()


def notebook(*sources: str) -> dict[str, Any]:
    """A python3 notebook as JupyterLab saves it: each cell's ``source`` a list of lines."""
    cells: list[dict[str, Any]] = [
        {
            "cell_type": "code",
            "id": f"c{index}",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": src.splitlines(keepends=True),
        }
        for index, src in enumerate(sources)
    ]
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": kernelspec}, "cells": cells}


def code_graph(source: str) -> dict[str, Any]:
    nodes = [
        {"id": "start", "type": "input"},
        {"id": "probe", "type": "code", "config": {"source": source}},
        {"id": "end", "type": "output"},
    ]
    return {"nodes": nodes, "edges": [{"source": "start", "target": "probe"}, {"source": "probe", "target": "end"}]}


def start_run(
    hub: TeamHub, person: Person, framework: str, spec: dict[str, Any], inputs: dict[str, Any] | None = None
) -> dict[str, Any]:
    agent = ok(api(hub, person, "POST", "agents", {"name": f"a-{secrets.token_hex(3)}", "framework": framework}), 201)
    body = {"name": f"w-{secrets.token_hex(3)}", "spec": spec}
    workflow = ok(api(hub, person, "POST", f"agents/{agent['id']}/workflows", body), 201)
    return ok(api(hub, person, "POST", f"workflows/{workflow['id']}/execute", {"inputs": inputs or {}}), 202)  # type: ignore[no-any-return]


def wait_final(hub: TeamHub, person: Person, run: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        found = ok(api(hub, person, "GET", f"executions/{run['id']}"))
        if found["status"] not in ("queued", "running"):
            return found  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"run {run['id']} did not end:\n{hub.log()[-6000:]}")


def logs(hub: TeamHub, person: Person, run: dict[str, Any]) -> str:
    response = api(hub, person, "GET", f"executions/{run['id']}/logs")
    assert response.status_code == 200, response.text
    return response.text


def reported(hub: TeamHub, person: Person, run: dict[str, Any], prefix: str = "PROBE ") -> dict[str, Any]:
    """The JSON line the run printed after ``prefix`` (waits for it while the run goes on)."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        found = re.search(re.escape(prefix) + r"(\{.*\})", logs(hub, person, run))
        if found:
            return json.loads(found.group(1))  # type: ignore[no-any-return]
        status = ok(api(hub, person, "GET", f"executions/{run['id']}"))
        if status["status"] not in ("queued", "running"):
            # it may have ended (its log written) between the read of the log above and this one
            found = re.search(re.escape(prefix) + r"(\{.*\})", logs(hub, person, run))
            assert found, (status["error"], logs(hub, person, run)[-3000:])
            return json.loads(found.group(1))  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"run {run['id']} printed no {prefix!r}:\n{hub.log()[-6000:]}")


def process(predicate: Any) -> psutil.Process:
    for proc in psutil.process_iter(["cmdline", "username"]):
        if predicate(proc.info.get("cmdline") or [], proc.info.get("username")):
            return proc
    raise AssertionError("no such process")
