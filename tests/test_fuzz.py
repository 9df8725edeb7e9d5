"""API fuzzing: schemathesis checks that the server does what its OpenAPI document says.

Every phase (examples, coverage, fuzzing, stateful: the document's links from each
create to its reads, updates, deletes and runs) and every check (``--checks all``:
no 5xx, statuses, content types, headers and bodies as documented, schema-valid
requests accepted and invalid ones refused, ``Allow`` on 405, authentication,
object-level authorization) against a real ``jupyter orchestrator``, as two users
of two organizations (alice and bob, each with a personal organization; alice, whose
calls the stateful phase makes, is a platform admin so that /admin's links are followed
too). A fixed seed makes a failure reproduce; any failure fails the test, and so does
the stateful phase following fewer links than ``LINKS_FOLLOWED_FLOOR`` (it prints how many).

Beside schemathesis's own ``object_level_authorization`` check (it replays alice's
reads as bob), the test reads the HAR of every exchange: no successful answer to
bob ever names an id of alice's resources.

What is not checked is in ``FUZZ_CONFIG``, each entry with its reason.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.personal_server import PersonalServer, start_personal_server, wait_postgres_stopped

SEED = "20261206"
MAX_EXAMPLES = "12"
#: stateful scenarios and the calls in each: Hypothesis ends the phase after 15-50 scenarios whatever the
#: first number, so the depth is what buys links: 67-72 of the 121 selected links followed with 50 calls
#: (67 with 30; 16 of 76 with 10, when POST /agents and the lists filtered by org_id could not start a
#: scenario), the whole run 49 s at load 2.5 (schemathesis 160 s at load 14 with 10 calls)
STATEFUL_SCENARIOS, STATEFUL_STEPS = 60, 50
#: the links the stateful phase must follow at least (of the 121 it selects: all but the event streams'); the
#: rest: workflows created with a random spec are refused (so their links rarely start), runs' and
#: schedules' links that need one, and a page's first item being a just-created empty resource
LINKS_FOLLOWED_FLOOR = 60
USERS = ("alice", "bob")
#: the run is bounded by --max-examples (--max-time would repeat fuzzing until it is spent): 50-190 s on
#: 2 cores at load 2-14; this is only a guard against a hang (the run is stopped, the test fails)
MAX_SECONDS = 720

#: each entry says why; nothing else is left out
FUZZ_CONFIG = """
# every check (what `--checks all` means; in the file, so that an operation below can turn one off)
[checks]
enabled = true

# The stateful phase runs --max-examples scenarios of max-steps calls each: 12 scenarios of 6 (the
# defaults) followed 9-11 of the links. More and longer scenarios, bounded in calls, over the links the
# document declares (orchestrator_ext/openapi_links.py: every create and list to what takes its id);
# the ones schemathesis would infer besides (Location headers, names alike) doubled the links to spread
# the same calls over.
[phases.stateful]
max-steps = STATEFUL_STEPS
inference.algorithms = []

[phases.stateful.generation]
max-examples = STATEFUL_SCENARIOS

[auth.wfc]
path = "auth.json"
peers = ["alice", "bob"]

# PostgreSQL cannot store U+0000 in text or jsonb: the API refuses it anywhere in a body with 422
# naming the field (handlers/base.py parse_body, documented in docs/api.md); JSON Schema cannot say
# so of free-form JSON values (specs, inputs, answers), so generated strings leave it out.
[generation]
allow-x00 = false

# Server-sent event streams stay open until the run ends or max_seconds pass (up to an hour);
# schemathesis reads a response whole. tests/api/test_organization_events.py and test_executions.py
# check them (statuses, Last-Event-ID, problem+json refusals).
[[operations]]
include-path-regex = "/events$"
enabled = false

# A workflow spec's graph rules (edges name existing nodes, node types and options of the agent's
# framework, one entry node) are the framework runtime's (POST /workflows/validate answers them);
# JSON Schema cannot express them, so a schema-valid spec may be refused with 422 naming the field.
[[operations]]
include-name = ["POST /agents/{agent_id}/workflows", "PUT /workflows/{workflow_id}"]
checks.positive_data_acceptance.enabled = false

# A user exists once they have used the API; the schema cannot know which names or ids exist, so
# adding one who never signed in is refused with 422 naming username (or user_id).
[[operations]]
include-name = ["POST /organizations/{org_id}/members", "POST /admin/organizations/{org_id}/members"]
checks.positive_data_acceptance.enabled = false

# A cron expression's fields and ranges (minute 0-59, names, steps) and the IANA time zone are the
# scheduler's parser's to check, and a notebook workflow's inputs must be its parameters: JSON
# Schema cannot express them, so a schema-valid schedule may be refused with 422 naming the field.
[[operations]]
include-name = ["POST /workflows/{workflow_id}/schedules", "PATCH /schedules/{schedule_id}"]
checks.positive_data_acceptance.enabled = false

# A run's `version` must be one its workflow has (GET /workflows/{workflow_id}/versions lists them; the
# links from that list and from a workflow pass one); JSON Schema cannot know which numbers exist, so a
# schema-valid version may be refused with 422 naming `version` (the stateful phase reaches real workflows).
[[operations]]
include-name = "POST /workflows/{workflow_id}/execute"
checks.positive_data_acceptance.enabled = false

# The frameworks are plugins (entry points) installed per server; the document cannot list them,
# so an unknown one is refused with 422 naming `framework` (and the known ones).
[[operations]]
include-name = "GET /schemas/workflow-spec.json"
checks.positive_data_acceptance.enabled = false
"""

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PersonalServer]:
    """A server that knows users by the test header (``token user:<name>``); no engine, no rate limits:
    queued runs stay queued (nothing to execute), and thousands of requests are not throttled."""
    root = tmp_path_factory.mktemp("fuzz")
    running = start_personal_server(
        root,
        root / "data",
        extra_env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        extra_args=(
            "--ServerApp.identity_provider_class=tests.identity.HeaderIdentityProvider",
            "--OrchestratorApp.run_engine=False",
            "--OrchestratorApp.rate_limits=False",
            # alice, whose calls the stateful phase makes, may use /admin (its links are followed); bob may not
            "--OrchestratorApp.platform_admins=alice",
        ),
    )
    try:
        yield running
    finally:
        running.stop(signal.SIGTERM)
        wait_postgres_stopped(running.pgdata)


def _seed(server: PersonalServer) -> None:
    """Give each user something of their own, so that reads, links and bob's probes find real ids."""
    for user in USERS:
        token = f"user:{user}"
        agent = server.call("POST", "/agents", {"name": f"{user}'s agent", "framework": "langgraph"}, token=token)
        assert agent.status == 201, agent.body
        spec = {
            "nodes": [{"id": "start", "type": "input"}, {"id": "end", "type": "output"}],
            "edges": [{"source": "start", "target": "end"}],
        }
        workflow = server.call(
            "POST", f"/agents/{agent.body['id']}/workflows", {"name": "flow", "spec": spec}, token=token
        )
        assert workflow.status == 201, workflow.body
        run = server.call("POST", f"/workflows/{workflow.body['id']}/execute", {}, token=token)
        assert run.status == 202, run.body
        hourly = server.call("POST", f"/workflows/{workflow.body['id']}/schedules", {"cron": "@hourly"}, token=token)
        assert hourly.status == 201, hourly.body


def _ids_of(server: PersonalServer, user: str) -> set[str]:
    """Every resource id ``user`` can list (organizations, agents, workflows, runs, integrations, schedules)."""
    token = f"user:{user}"
    ids: set[str] = set()
    for path in ("/organizations", "/agents", "/executions", "/integrations"):
        ids |= {item["id"] for item in server.call("GET", f"{path}?limit=200", token=token).body["items"]}
    for agent in server.call("GET", "/agents?limit=200", token=token).body["items"]:
        workflows = server.call("GET", f"/agents/{agent['id']}/workflows?limit=200", token=token).body["items"]
        for workflow in workflows:
            ids.add(workflow["id"])
            schedules = server.call("GET", f"/workflows/{workflow['id']}/schedules", token=token).body["items"]
            ids |= {s["id"] for s in schedules}
    return ids


def _bob_saw(har: Path) -> set[str]:
    """The ids in bodies of successful answers to bob's requests (his request's own ids excepted)."""
    seen: set[str] = set()
    for entry in json.loads(har.read_text())["log"]["entries"]:
        request, response = entry["request"], entry["response"]
        headers = {h["name"].lower(): h["value"] for h in request["headers"]}
        if headers.get("authorization") != "token user:bob" or not 200 <= response["status"] < 300:
            continue
        asked = set(_UUID.findall(request["url"] + json.dumps(request.get("postData", {}))))
        seen |= set(_UUID.findall(response.get("content", {}).get("text", ""))) - asked
    return seen


@pytest.mark.timeout(MAX_SECONDS + 180)  # the server's start and the seeding come on top of the run
def test_the_server_does_what_its_document_says(server: PersonalServer, tmp_path: Path) -> None:
    st = shutil.which("st") or str(Path(sys.executable).with_name("st"))
    _seed(server)
    (tmp_path / "auth.json").write_text(
        json.dumps(
            {
                "auth": [
                    {"name": user, "fixedHeaders": [{"name": "Authorization", "value": f"token user:{user}"}]}
                    for user in USERS
                ]
            }
        )
    )
    config = FUZZ_CONFIG.replace("STATEFUL_SCENARIOS", str(STATEFUL_SCENARIOS))
    (tmp_path / "schemathesis.toml").write_text(config.replace("STATEFUL_STEPS", str(STATEFUL_STEPS)))
    command = [
        st,
        "--config-file",
        str(tmp_path / "schemathesis.toml"),
        "--no-color",
        "run",
        f"{server.api_url}/openapi.json",
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        SEED,
        "--request-timeout",
        "20",
        "--workers",
        "1",
        "--output-sanitize",
        "false",
        "--report",
        "har",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    started = time.monotonic()
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=MAX_SECONDS, check=False)
    links = re.search(r"API Links: +(\d+) covered / (\d+) selected / (\d+) total", result.stdout)
    # the CI log shows the cost and how much of the links the stateful phase followed
    print(f"schemathesis ran {time.monotonic() - started:.0f} s; {links.group(0) if links else 'no stateful phase'}")
    summary = result.stdout[result.stdout.find("=== SUMMARY") :] if "=== SUMMARY" in result.stdout else ""
    # the failures first: the extraction warnings after them can fill any tail
    failures = result.stdout[result.stdout.find("=== FAILURES") :] if "=== FAILURES" in result.stdout else ""
    assert result.returncode == 0, failures[:12000] + result.stdout[-4000:] + result.stderr[-2000:]
    assert "Stateful" in result.stdout, summary
    assert links is not None, summary
    followed, selected = int(links.group(1)), int(links.group(2))
    assert followed >= LINKS_FOLLOWED_FLOOR, f"the stateful phase followed {followed} of {selected} links: " + summary
    assert "unhandled error" not in server.output()

    alices = _ids_of(server, "alice")
    assert alices, "alice has resources to protect"
    hars = list((tmp_path / "report").glob("har-*.json"))
    assert hars, "schemathesis wrote its exchanges"
    leaked = alices & set().union(*(_bob_saw(har) for har in hars))
    assert not leaked, f"bob was shown alice's ids: {sorted(leaked)}"
