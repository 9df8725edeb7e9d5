"""Canaries: personal data and secrets never reach the disk or a log in plain text.

A real ``jupyter orchestrator`` (its own data folder and embedded PostgreSQL,
``--debug`` logging) is given known values through the API: a user's display
name and e-mail address, and an integration's secret. A notebook run then
handles them through the Python client, with every logger at DEBUG: it reads
the user back, receives the secret from the worker, and writes a new secret of
its own through the API. After a ``CHECKPOINT``, every byte under the server's
folder (PostgreSQL's data files and WAL, its logs, the server's log with the
worker's and the runs', the Jupyter folders) is searched for the UTF-8
bytes of each canary. They are encrypted at rest
(AES-256-GCM, ``orchestrator_ext.security.crypto``) and never logged.
Tracing is on (exporting to :mod:`tests.otlp_receiver`): every span exported
(the requests, their statements, the run's) is searched too, for the canaries
and for the server's token (no SQL values, no headers, no query strings).

Not covered, because it does not hold: what a run prints itself (its
notebook's outputs, its events, and with ``--debug`` jupyter_client's log of
every kernel message in the server's log) is stored and logged as printed.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from pathlib import Path
from typing import Any

import psycopg

from orchestrator_ext.db.embedded import superuser_url
from tests.otlp_receiver import OtlpReceiver, traced_server_fixtures
from tests.personal_server import PersonalServer

RUN_TIMEOUT_S = 120.0

#: the run: reads the canaries back through the client, and writes one more, with every logger at DEBUG (what
#: the client, urllib and the runtime log lands in the run's stored notebook and events: searched too). It
#: does not print the canaries itself: a run's own output is stored as it printed it (see the module's note).
RUN_SOURCE = """\
import hashlib, logging
logging.basicConfig(level=logging.DEBUG, force=True)
from orchestrator_ext.client import Client
from orchestrator_runtimes import integration, record
api, canary = integration("api"), integration("canary")
client = Client(url=api["config"]["url"], token=api["secret"])
me = client.me()
logging.getLogger("canary-run").debug("the user: %s, %d memberships", me["id"], len(me["memberships"]))
created = client.request("POST", "integrations", body={"kind": "tool", "name": "from-the-run",
                                                       "secret": canary["secret"][::-1]})
logging.getLogger("canary-run").debug("created: %r", created)
digest = lambda value: hashlib.sha256(value.encode()).hexdigest()
record("digests", [digest(me["display_name"]), digest(me["email"]), digest(canary["secret"])])
"""


def notebook(source: str) -> dict[str, Any]:
    cell = {"cell_type": "code", "id": "run", "metadata": {}, "execution_count": None, "outputs": []}
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [{**cell, "source": source.splitlines(keepends=True)}],
    }


receiver, server = traced_server_fixtures("canary", extra_args=("--debug",))


def created(server: PersonalServer, method: str, path: str, body: Any) -> dict[str, Any]:
    reply = server.call(method, path, body)
    assert reply.status in (200, 201, 202), (path, reply.status, reply.body)
    result: dict[str, Any] = reply.body
    return result


def run_to_the_end(server: PersonalServer, workflow_id: str) -> dict[str, Any]:
    run = created(server, "POST", f"/workflows/{workflow_id}/execute", {"inputs": {}})
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        execution = server.call("GET", f"/executions/{run['id']}").body
        if execution["status"] not in ("queued", "running"):
            return dict(execution)
        time.sleep(0.2)
    raise AssertionError(f"the run did not end in {RUN_TIMEOUT_S:.0f} s")


def files_containing(root: Path, needles: dict[str, bytes]) -> dict[str, list[str]]:
    """For each canary, the files under ``root`` whose bytes contain it."""
    found: dict[str, list[str]] = {name: [] for name in needles}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        for name, needle in needles.items():
            if needle in data:
                found[name].append(str(path.relative_to(root)))
    return found


def write_canaries(server: PersonalServer, canaries: dict[str, str], control: str) -> str:
    """The canaries through the API, and the workflow of the run that handles them; its id."""
    me = created(server, "PUT", "/users/me", {"display_name": canaries["display name"], "email": canaries["email"]})
    assert me["display_name"] == canaries["display name"]  # what the owner reads back is the plain value
    secret = canaries["integration secret"]
    created(server, "POST", "/integrations", {"kind": "tool", "name": "canary", "secret": secret})
    api = {"kind": "tool", "name": "api", "config": {"url": server.url}, "secret": server.token}
    created(server, "POST", "/integrations", api)
    agent = created(server, "POST", "/agents", {"name": control, "framework": "notebook"})
    spec = {"timeout_seconds": 90, "integrations": ["api", "canary"], "notebook": {"content": notebook(RUN_SOURCE)}}
    return str(created(server, "POST", f"/agents/{agent['id']}/workflows", {"name": "canary", "spec": spec})["id"])


def test_canaries_never_reach_a_file_or_a_log_in_plain_text(server: PersonalServer, receiver: OtlpReceiver) -> None:
    tag = secrets.token_hex(6)
    canaries = {
        "display name": f"Canary Name {tag}",
        "email": f"canary.{tag}@example.org",
        "integration secret": f"sk-canary-{tag}-secret",
    }
    canaries["secret the run wrote"] = canaries["integration secret"][::-1]
    control = f"control-agent-{tag}"  # not personal data: stored as it is, so the search must find it
    execution = run_to_the_end(server, write_canaries(server, canaries, control))
    assert execution["status"] == "succeeded", execution
    handled = ("display name", "email", "integration secret")
    digests = [hashlib.sha256(canaries[name].encode()).hexdigest() for name in handled]
    assert execution["outputs"]["digests"] == digests  # the run really handled each canary
    names = {i["name"]: i for i in server.call("GET", "/integrations").body["items"]}
    assert names["from-the-run"]["has_secret"]

    with psycopg.connect(superuser_url(server.data_dir), autocommit=True) as conn:
        conn.execute("CHECKPOINT")  # every page written to the data files, not only to the WAL
    assert list((server.pgdata / "pg_wal").glob("0*")), "no WAL segment to search"
    needles = {name: value.encode() for name, value in canaries.items()}
    leaks = {name: where for name, where in files_containing(server.log_path.parent, needles).items() if where}
    assert leaks == {}, f"canaries in plain text: {leaks}"
    # the search does find what the database holds in plain text, in the data files and in the WAL
    [found] = files_containing(server.log_path.parent, {"control": control.encode()}).values()
    assert any(f.startswith("data/pgdata/base/") for f in found), found
    assert any(f.startswith("data/pgdata/pg_wal/") for f in found), found
    assert_no_canary_in_spans(receiver, execution["id"], {**needles, "server token": server.token.encode()}, control)


def assert_no_canary_in_spans(
    receiver: OtlpReceiver, execution_id: str, needles: dict[str, bytes], control: str
) -> None:
    """Every exported span, searched as received: its name, attributes, events and resource."""
    deadline = time.monotonic() + 30
    while not any(s.attributes.get("orchestrator.execution.id") == execution_id for s in receiver.received()):
        assert time.monotonic() < deadline, "the run's spans never arrived"
        time.sleep(0.2)
    spans = receiver.received()
    leaks = {name: sorted({s.name for s in spans if value.decode() in s.raw}) for name, value in needles.items()}
    assert {name: where for name, where in leaks.items() if where} == {}, f"canaries in spans: {leaks}"
    # the search finds what spans hold (the run's id is an attribute), and statements' values are not held
    # (the agent's name was one, in its INSERT)
    assert any(execution_id in s.raw for s in spans)
    assert any("INSERT INTO agents" in str(s.attributes.get("db.statement")) for s in spans)
    assert not any(control in s.raw for s in spans)
