"""The CrewAI and Agno kernels in a real JupyterLab (Playwright, Debian's Chromium), as a user meets them on
a fresh personal server with the local model (SmolLM2 on llama-cpp-python), the kernelspecs as
``jupyter orchestrator kernels install`` writes them, and no model integration of their own:

1. the launcher's *Orchestrator · CrewAI* (or *· Agno*) card makes a new notebook on that kernel;
2. its first cell builds a crew (a team) with ``model()`` and deploys it with ``%%orchestrator deploy``;
3. completion (Tab) offers the framework object's methods;
4. ``%orchestrator run NAME key=value`` shows the execution view, which reaches *succeeded* with the
   run's output: the local model answered in the run, checked through the API too.

The LangGraph kernel takes the same path in tests/widgets/test_quickstart.py (its starter notebook).

A kernel JupyterLab starts with the server (a restored notebook) starts before the local model is up, so
without its URL in its environment: ``model()`` asks the server each time. Before, such a kernel's first
cell failed with NoModel and Run All Cells stopped there (the CrewAI browser test of the last session
waited 189 s for a run that was never made).
"""

from __future__ import annotations

import json
import re
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from orchestrator_kernels.models import find_endpoint
from playwright.sync_api import Locator, Page, expect

from orchestrator_ext.client import Client
from tests.personal_server import PersonalServer, start_personal_server, wait_postgres_stopped
from tests.widgets.browser import LOAD_TIMEOUT_MS, chromium_page, launcher_section, open_lab_launcher, screenshot
from tests.widgets.conftest import NOTIFICATIONS

pytestmark = pytest.mark.timeout(300)
#: JupyterLab drops a completion provider's answer after 1 s; a framework kernel's first answer can take
#: longer on a busy machine (it measured 2.8 s at load 14 on 2 cores): this server's user waits longer
COMPLETER = "lab/user-settings/@jupyterlab/completer-extension/manager.jupyterlab-settings"
#: a run on the local model: a kernel or fork server to start, then the model's answer, on a busy machine
RUN_TIMEOUT_MS = 150_000


@dataclass(frozen=True)
class Case:
    """What a user writes in a notebook on one framework kernel."""

    title: str
    #: the first cell, after its ``%%orchestrator deploy`` line: builds the agent with the kernel's names
    build: str
    #: what is typed before Tab, and a completion it must offer
    completes: tuple[str, str]
    #: the run's inputs, as ``key=value`` words
    inputs: str


CASES = {
    "crewai": Case(
        "CrewAI",
        'poet = Agent(role="Poet", goal="Say one word about {topic}", backstory="Brief.", '
        "llm=model(max_tokens=16), max_iter=1)\n"
        'word = Task(description="One word about {topic}.", expected_output="A word.", agent=poet)\n'
        "crew = Crew(agents=[poet], tasks=[word])",
        ("crew.kick", "kickoff_async"),
        "topic=tea",
    ),
    "agno": Case(
        "Agno",
        'team = Team(name="Editors", model=model(max_tokens=16), '
        'members=[Agent(name="Poet", model=model(max_tokens=16), instructions="Say one word.")])',
        ("team.get_mem", "get_member_information"),
        'message="Say tea."',  # an Agno team reads inputs.message
    ),
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, kernel_path: Path) -> Iterator[PersonalServer]:
    """``jupyter orchestrator`` with its local model, seeing the kernels the installer wrote; nothing else
    set (the kernels and runs keep the frameworks off the network themselves)."""
    root = tmp_path_factory.mktemp("lab-kernels")
    settings = root / "jupyter-config" / NOTIFICATIONS
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    completer = root / "jupyter-config" / COMPLETER
    completer.parent.mkdir(parents=True)
    completer.write_text(json.dumps({"providerTimeout": 15_000}))
    running = start_personal_server(root, root / "data", local_model=True, extra_env={"JUPYTER_PATH": str(kernel_path)})
    try:
        wait_for_the_local_model(Client(running.url, running.token))
        yield running
    finally:
        running.stop(signal.SIGTERM)
        wait_postgres_stopped(running.pgdata)


def wait_for_the_local_model(client: Client, timeout: float = 120.0) -> None:
    """The server loads its local model after it answers: a user's first cell comes seconds later."""
    deadline = time.monotonic() + timeout
    while not [m for m in client.models() if m["name"] == "local-model"]:
        assert time.monotonic() < deadline, "the personal server's local model never came up"
        time.sleep(0.2)


def new_notebook(page: Page, title: str) -> Locator:
    """The launcher's card of the kernel ``Orchestrator · <title>``: a new notebook on it, kernel idle."""
    launcher_section(page, "Notebook").locator(".jp-LauncherCard", has_text=f"Orchestrator · {title}").click()
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    expect(panel.locator('[data-jp-item-name="kernelName"]')).to_have_text(f"Orchestrator · {title}")
    expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle", timeout=LOAD_TIMEOUT_MS)
    return panel


def type_cell(page: Page, panel: Locator, code: str) -> Locator:
    """Write ``code`` in the notebook's last cell (as one paste: no auto-indent); that cell (by its place:
    running it adds a cell after it)."""
    cells = panel.locator(".jp-CodeCell")
    cell = cells.nth(cells.count() - 1)
    cell.locator(".cm-content").click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.insert_text(code)
    return cell


def offers_completion(page: Page, panel: Locator, typed: str, wanted: str) -> None:
    """Tab after ``typed`` (key by key: the completer follows typing, not a paste) opens the completer
    offering ``wanted``; Escape, and the cell is emptied."""
    type_cell(page, panel, "")
    page.keyboard.type(typed)
    page.keyboard.press("Tab")
    completer = page.locator(".jp-Completer")
    expect(completer.locator(".jp-Completer-match", has_text=re.compile(f"^{wanted}$"))).to_have_count(1)
    page.keyboard.press("Escape")
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.press("Backspace")


def test_a_kernel_started_before_the_local_model_finds_it(lab: PersonalServer) -> None:
    """No ``ORCHESTRATOR_LOCAL_MODEL_URL`` (the kernel started first) and no integration: the server's model."""
    endpoint = find_endpoint(environ={}, client=Client(lab.url, lab.token))
    served = Client(lab.url, lab.token).models()
    assert (endpoint.integration, endpoint.base_url) == ("local-model", served[0]["base_url"].rstrip("/"))
    assert find_endpoint("local-model", environ={}, client=Client(lab.url, lab.token)) == endpoint


@pytest.mark.parametrize("key", list(CASES))
def test_a_code_first_agent_deployed_and_run_from_a_new_notebook(key: str, lab: PersonalServer) -> None:
    case, client = CASES[key], Client(lab.url, lab.token)
    agent = f"{case.title} lab {uuid.uuid4().hex[:6]}"
    with chromium_page() as page:
        open_lab_launcher(page, lab.url, f"&token={lab.token}")
        panel = new_notebook(page, case.title)

        deploy = type_cell(page, panel, f'%%orchestrator deploy --agent "{agent}"\n{case.build}')
        page.keyboard.press("Shift+Enter")
        expect(deploy.locator(".jp-OutputArea-output")).to_contain_text("is now at version 1", timeout=60_000)

        offers_completion(page, panel, *case.completes)
        run = type_cell(page, panel, f'%orchestrator run "{agent}" {case.inputs}')
        page.keyboard.press("Shift+Enter")
        view = run.locator(".ow-execution")
        expect(view).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)
        expect(view.get_by_label("Outputs")).not_to_be_empty()
        screenshot(page, f"lab-kernel-{key}", clip=panel)

    [found] = [a for a in client.agents(q=agent) if a["name"] == agent]
    assert found["framework"] == key
    [ran] = client.executions(agent_id=found["id"])
    assert ran["status"] == "succeeded", ran["error"]
    assert str(ran["outputs"]).strip()
