"""A first n8n run that arrives while its organization's instance is still starting waits for it.

A run is handed its integrations when the worker claims it. The platform
saves an instance's ``n8n`` integration, URL and no key, before that instance
first starts (:func:`.integration.reserve`), and its key once it is ready
(9-35 s later). A run claimed in between is handed the keyless one: rather
than failing with "no n8n integration" or "no API key", the worker reads the
run's integrations again until the key is there, the run is cancelled, or its
time is up (its timeout, else :data:`START_SECONDS`); the run then goes on as
any other. A run claimed before the server even began (no n8n integration
yet) looks a few seconds for the reserved one. Integrations that carry a
key, or that the platform does not manage (an external instance registered
without one), never wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from orchestrator_runtimes.n8n.run import START_SECONDS

Handed = dict[str, dict[str, Any]]
#: how often the integrations are read again while the instance starts
POLL_SECONDS = 0.5
#: how long a run handed no n8n integration at all looks for the one the server reserves when it begins to
#: start the organization's instance (it looks for n8n agents every second)
APPEAR_SECONDS = 5.0


def starting(handed: Handed) -> bool:
    """Whether an n8n integration handed to the run is one the platform is still starting (managed, no key, not
    refused: :mod:`.instances`)."""
    return any(
        value.get("kind") == "n8n"
        and "managed" in (config := value.get("config") or {})
        and not config.get("refused")
        and not value.get("secret")
        for value in handed.values()
    )


class Waiting(Protocol):
    """The run being started, as the worker holds it (engine/attempts.py's ``ActiveRun``)."""

    cancelled: asyncio.Event

    @property
    def run(self) -> Any: ...


async def when_ready(handed: Handed, read: Callable[[Any], Awaitable[Handed]], active: Waiting) -> Handed:
    """``handed``, or once the instance being started has its key, the run's integrations as ``read(active)``
    gives them again; bounded by the run's timeout, else :data:`START_SECONDS`, and its cancel. A run handed no
    n8n integration at all looks again for :data:`APPEAR_SECONDS` (the server reserves it within a poll)."""
    began = time.monotonic()
    limit = active.run.timeout_seconds or START_SECONDS
    while not active.cancelled.is_set():
        waited = time.monotonic() - began
        missing = not any(value.get("kind") == "n8n" for value in handed.values())
        if (not missing and not starting(handed)) or (missing and waited >= APPEAR_SECONDS) or waited >= limit:
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(active.cancelled.wait(), min(POLL_SECONDS, max(0.0, limit - waited)))
        handed = await read(active)
    return handed
