"""A widget's event stream publishes in the context of what started it (the cell that made the widget, or the
comm message that asked for it), not a bare thread's: ipykernel 7 routes a comm's later messages to the subshell
of the message current when its widget last published, and a bare thread's is whatever message any subshell
handled last (perhaps the widget manager's restore, whose subshell is deleted at once: the buttons then go
nowhere). The builder's timers do the same (tests/widgets/test_lab.py's launcher card test)."""

from __future__ import annotations

import contextvars
import time

from orchestrator_widgets.events import EventStream

from orchestrator_ext.client import Client
from tests.widgets.sample_specs import with_approval

MESSAGE: contextvars.ContextVar[str] = contextvars.ContextVar("message", default="a bare thread's")


def test_an_event_stream_publishes_in_the_context_that_started_it(client: Client) -> None:
    agent = client.create_agent("Context of the stream", "langgraph")
    workflow = client.create_workflow(agent["id"], "Asks", with_approval())
    execution = client.execute(workflow["id"], {})
    seen: list[str] = []
    token = MESSAGE.set("the cell that made the widget")
    try:
        stream = EventStream(client, execution["id"], lambda _event: seen.append(MESSAGE.get())).start()
    finally:
        MESSAGE.reset(token)
    try:
        deadline = time.monotonic() + 120
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stream.stop()
        client.cancel(execution["id"])
    assert seen
    assert set(seen) == {"the cell that made the widget"}
