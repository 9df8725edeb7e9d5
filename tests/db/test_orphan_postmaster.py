"""The embedded postmaster left running when every process holding it was killed (SIGKILL).

Nobody let go, so nobody stopped it: it runs on, held by nobody, until the next
start. That start stops it (after a look that its holders are all dead) and
starts a server of its own, which the last of its own holders stops again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import psycopg
import pytest

from orchestrator_ext.db.embedded import EmbeddedPostgres
from orchestrator_ext.db.handles import handle_pids, process_start
from tests.logs import captured_logs
from tests.personal_server import wait_postgres_stopped
from tests.postmaster import hold_and_let_go, hold_then_die, postmaster_pid
from tests.postmaster import pgdata as pgdata


def test_the_next_start_reaps_a_postmaster_whose_holders_were_all_killed(
    pgdata: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hold_then_die(pgdata)
    orphan = postmaster_pid(pgdata)
    assert process_start(orphan) is not None, "the postmaster outlives its killed holder (nothing can stop it)"
    assert handle_pids(pgdata) == []
    server = EmbeddedPostgres(pgdata)
    with captured_logs(caplog, "orchestrator.db", logging.INFO):
        server.start()
    try:
        assert process_start(orphan) is None, "the orphan was adopted, not stopped"
        assert postmaster_pid(pgdata) != orphan
        assert "outlived every process that held it" in caplog.text
        assert handle_pids(pgdata) == [os.getpid()]
        psycopg.connect(server.admin_url("postgres"), connect_timeout=10).close()
    finally:
        server.stop()
    assert wait_postgres_stopped(pgdata, 30) == [], "its own last holder stops the new server"


def test_a_server_held_by_a_living_process_is_joined_not_restarted(
    pgdata: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = EmbeddedPostgres(pgdata)
    first.start()
    try:
        running = postmaster_pid(pgdata)
        hold_then_die(pgdata)  # a dead holder beside a living one: not an orphan
        second = hold_and_let_go(pgdata)
        assert second.returncode == 0, second.stderr
        assert postmaster_pid(pgdata) == running
        assert handle_pids(pgdata) == [os.getpid()]
    finally:
        with captured_logs(caplog, "orchestrator.db", logging.INFO):
            first.stop()
    assert "embedded PostgreSQL stopped" in caplog.text  # the last holder, as the list said under the lock
    assert wait_postgres_stopped(pgdata, 30) == []
