"""The team mode's n8n instances on demand: ``jupyter orchestrator n8n instances``, a service of the hub's.

Under JupyterHub the Orchestrator API runs unprivileged and the worker as root;
neither starts n8n. This command, run by the hub as root beside them
(hub_config/team.py), starts each organization's instance when it is wanted,
as the personal mode's server does for other organizations
(:class:`.instances.OrgInstances`: an n8n agent and no ``n8n`` integration
yet, or an n8n run queued with an instance the platform manages and not
running), within ``ORCHESTRATOR_N8N_MAX_INSTANCES``, and stops those idle for
``ORCHESTRATOR_N8N_IDLE_SECONDS``. Each runs under an account of its own, its
editor served by the hub's Orchestrator service (the owner's login sealed with
the organization's integration, as ``serve --service-prefix`` keeps it).

Where the embedded PostgreSQL is the service's (another account's), n8n's
databases are made as that account (:mod:`.attach`), one child process per
instance start, and this process reaches the platform's database as the
server's superuser, as the worker does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine

from ..db.engine import sqlalchemy_url
from ..security.crypto import KeyRing
from .database import N8nDatabase
from .instances import OrgInstances

log = logging.getLogger("orchestrator.n8n")

#: after a failure (the database away), the next look
RETRY_SECONDS = 10.0


async def serve_instances(
    root: Path,
    admin_url: str,
    keyring: KeyRing,
    make_database: Callable[[str], N8nDatabase | None],
    stop: asyncio.Event,
    *,
    editor_prefix: str = "",
    poll: float = 1.0,
) -> None:
    """Start the organizations' instances when wanted, until ``stop``; then stop them all."""
    engine = create_engine(sqlalchemy_url(admin_url), pool_size=1, max_overflow=0)
    orgs = OrgInstances(root, root.parent, engine, keyring, make_database=make_database, editor_prefix=editor_prefix)
    try:
        while not stop.is_set():
            pause = poll
            try:
                await orgs.start_wanted(None)  # no owner here: every organization's instance is on demand
            except Exception:  # the database may be away: look again later
                log.warning("could not look for n8n runs, or start an instance", exc_info=True)
                pause = RETRY_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
    finally:
        await orgs.stop()
        engine.dispose()
