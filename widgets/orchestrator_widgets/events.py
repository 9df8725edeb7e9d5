"""An execution's server-sent events, read in the kernel with the user's own client connection.

``GET /executions/{id}/events`` streams ``status``, ``log`` and ``step`` events
and ends after the run's final status; a dropped connection is taken up again
after the last event id seen (``Last-Event-ID``). The browser never sees the
token: the widget's Python side reads the stream and publishes state.
"""

from __future__ import annotations

import contextlib
import contextvars
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from orchestrator_ext.client import FINISHED, ApiError, Client, ClientError

#: longer than the server's keep-alive comment (15 s), so a quiet run is not taken for a dead connection
READ_TIMEOUT_S = 60.0
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class Event:
    """One server-sent event: its id, kind (``status``, ``log``, ``step``) and the event's JSON."""

    id: int
    kind: str
    data: dict[str, Any]


def _event(event_id: int, kind: str, body: Any) -> Event:
    """The API sends the stored event (``{id, kind, attempt, data, created_at}``): keep its ``data``."""
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        data = body["data"]
        if "execution_id" in body:  # an organization's stream: whose run it is
            data = {**data, "execution_id": body["execution_id"]}
        return Event(int(body.get("id") or event_id), str(body.get("kind") or kind), data)
    return Event(event_id, kind, body if isinstance(body, dict) else {"value": body})


def parse_stream(lines: Iterator[bytes]) -> Iterator[Event]:
    """Events from the lines of a ``text/event-stream`` body (comments and unknown fields ignored)."""
    event_id, kind = 0, "message"
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield _event(event_id, kind, json.loads("\n".join(data)))
            kind, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id" and value.isdigit():
            event_id = int(value)
        elif name == "event":
            kind = value
        elif name == "data":
            data.append(value)


class EventStream:
    """Follows one execution's events on a thread until the run ends or :meth:`stop` is called."""

    def __init__(self, client: Client, execution_id: str, on_event: Callable[[Event], None]) -> None:
        self.client = client
        self.execution_id = execution_id
        self.on_event = on_event
        self.last_id = 0
        self.status = ""
        self.error: str | None = None
        self._stopped = threading.Event()
        self._connection: http.client.HTTPConnection | None = None
        self._opened: http.client.HTTPResponse | None = None
        self.path = f"executions/{quote(execution_id)}/events"
        self.ends_with_run = True
        # The thread runs in a copy of its creator's context (the cell or the comm message that started it), so
        # what it publishes goes out as that message's reply: ipykernel 7 routes a comm's later messages to the
        # subshell of the message current when its widget last published, and from a bare thread that is the last
        # message any subshell handled, perhaps the widget manager's restore, whose subshell is then deleted
        # (see orchestrator_widgets.builder, "Threads and the kernel's subshells").
        self._thread = threading.Thread(
            target=contextvars.copy_context().run, args=(self._follow,), name=f"events-{execution_id}", daemon=True
        )

    def start(self) -> EventStream:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following: close the socket under the blocked read, so the thread ends at once."""
        self._stopped.set()
        connection = self._connection
        if connection is not None and connection.sock is not None:
            with contextlib.suppress(OSError):  # already closed
                connection.sock.shutdown(socket.SHUT_RDWR)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _follow(self) -> None:
        failures = 0
        while not self._stopped.is_set():
            try:
                self._read_once()
                if self.ends_with_run and self.status in FINISHED:
                    return  # the server closes the stream after the run's final status
                failures = 0  # closed early (a proxy, a restart): take it up again after the last event
            except ApiError as exc:
                self.error = str(exc)
                return  # 404 or 403: retrying will not help
            except (ClientError, OSError, http.client.HTTPException, ValueError) as exc:
                if self._stopped.is_set():
                    return
                self.error = f"the event stream broke ({exc}); reconnecting"
                time.sleep(RETRY_DELAYS_S[min(failures, len(RETRY_DELAYS_S) - 1)])
                failures += 1

    def _open(self) -> http.client.HTTPResponse:
        url = f"{self.client.api_url}/{self.path}"
        parts = urlsplit(url)
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            context = self.client.connection.ssl_context
            connection = http.client.HTTPSConnection(parts.netloc, timeout=READ_TIMEOUT_S, context=context)
        else:
            connection = http.client.HTTPConnection(parts.netloc, timeout=READ_TIMEOUT_S)
        self._connection = connection
        headers = {"Authorization": f"token {self.client.connection.token}", "Accept": "text/event-stream"}
        if self.last_id:
            headers["Last-Event-ID"] = str(self.last_id)
        connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
        response = connection.getresponse()
        if response.status != 200:
            raise ApiError.from_response(response.status, response.read(), response.reason)
        return response

    def _read_once(self) -> None:
        """Read the stream until it closes."""
        response = self._opened or self._open()
        self._opened = None
        try:
            for event in parse_stream(iter(response.readline, b"")):
                self.last_id = max(self.last_id, event.id)
                if event.kind == "status":
                    self.status = str(event.data.get("status") or "")
                self.on_event(event)
        finally:
            response.close()
            if self._connection is not None:
                self._connection.close()


class OrganizationStream(EventStream):
    """Every status change of an organization's runs (``/organizations/{id}/events``), until stopped.

    :meth:`start` returns once the server has answered: from then on no change
    is missed, so a list read after it and updated by the events stays true.
    The server closes the stream now and then; it is taken up after the last id.
    """

    def __init__(self, client: Client, org_id: str, on_event: Callable[[Event], None]) -> None:
        super().__init__(client, org_id, on_event)
        self.path = f"organizations/{quote(org_id)}/events"
        self.ends_with_run = False  # many runs: the stream ends only when the server closes it

    def start(self) -> OrganizationStream:
        self._opened = self._open()
        super().start()
        return self
