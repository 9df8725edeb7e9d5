"""The embedded PostgreSQL under blows: its postmaster killed, the processes holding it killed.

Each test has a server of its own (a fresh data directory), never the session's.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest
import sqlalchemy.exc

from orchestrator_ext.db.embedded import EmbeddedPostgres
from orchestrator_ext.db.handles import HANDLES_FILE, LiveHandles, handle_pids
from orchestrator_ext.db.setup import DatabaseLocation, prepare_database
from tests.logs import captured_logs
from tests.personal_server import wait_postgres_stopped
from tests.postmaster import hold, postmaster_pid
from tests.postmaster import pgdata as pgdata

RESTART_BOUND_SECONDS = 90.0


def answers(server: EmbeddedPostgres) -> bool:
    try:
        psycopg.connect(server.admin_url("postgres"), connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


def test_a_killed_postmaster_is_restarted_within_seconds(pgdata: Path) -> None:
    server = EmbeddedPostgres(pgdata)
    server.start()
    holder = hold(pgdata)  # two processes watch it: one restarts it, the other finds it running
    try:
        for _ in range(2):
            dead = postmaster_pid(pgdata)
            os.kill(dead, signal.SIGKILL)
            killed = time.monotonic()
            while not answers(server):
                # seconds here; the bound is wide for a machine whose two cores are shared with much else
                assert time.monotonic() - killed < RESTART_BOUND_SECONDS, "not restarted"
                time.sleep(0.05)
            assert postmaster_pid(pgdata) != dead
            while server.state != "ok":  # it answers a moment before this process's watcher has looked
                assert time.monotonic() - killed < RESTART_BOUND_SECONDS, server.state
                time.sleep(0.05)
    finally:
        holder.communicate("", timeout=60)
        server.stop()
    assert wait_postgres_stopped(pgdata, 30) == [], "the last holder to let go stops it"


def test_a_holder_killed_with_sigkill_does_not_keep_the_server_running(pgdata: Path) -> None:
    server = EmbeddedPostgres(pgdata)
    server.start()
    holder = hold(pgdata)
    assert sorted(handle_pids(pgdata)) == sorted([os.getpid(), holder.pid])
    holder.kill()  # it never lets go: its pid stays in the file until someone reads it
    holder.wait()
    assert holder.pid in [pid for pid, _ in LiveHandles(pgdata / HANDLES_FILE).entries()]
    assert handle_pids(pgdata) == [os.getpid()]
    server.stop()
    assert wait_postgres_stopped(pgdata, 30) == [], "the dead holder's pid kept the server running"
    assert json.loads((pgdata / HANDLES_FILE).read_text()) == []


def test_a_reused_pid_does_not_hold_the_server(tmp_path: Path) -> None:
    """A pid in the file whose process started later than the one written there is another process."""
    unrelated = subprocess.Popen(["sleep", "30"])
    try:
        path = tmp_path / HANDLES_FILE
        path.write_text(
            json.dumps(
                [
                    {"pid": os.getpid(), "start": None},  # unknown start: counts while alive
                    {"pid": unrelated.pid, "start": 1},  # the pid now names a process started later
                    {"pid": 2**22 + 7, "start": 5},  # no such process
                ]
            )
        )
        handles = LiveHandles(path)
        assert handles.get() == [os.getpid()]
        assert len(handles.entries()) == 3, "a read writes nothing (tests/db/test_handles.py)"
        handles.get_and_add(unrelated.pid)
        assert handles.get() == [os.getpid(), unrelated.pid]  # written now, with its own start time
        assert [pid for pid, _ in handles.entries()] == [os.getpid(), unrelated.pid], "a write drops the dead"
    finally:
        unrelated.kill()
        unrelated.wait()
    assert LiveHandles(tmp_path / HANDLES_FILE).get() == [os.getpid()]


def test_a_process_starting_while_the_database_is_away_waits_for_it(
    pgdata: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An external database that is down when a worker starts: it waits, says so, and goes on once it is back."""
    server = EmbeddedPostgres(pgdata)
    server.start()
    location = DatabaseLocation(server.role_url(server.app_role), server.admin_url(), pgdata.parent, server.app_role)
    server.stop()  # the outage: nothing listens on the socket
    assert wait_postgres_stopped(pgdata, 30) == []
    back = threading.Timer(2.0, server.start)
    back.start()
    try:
        with captured_logs(caplog, "orchestrator.db", logging.WARNING):
            prepared = prepare_database(location, revision=None, patience=120)
        assert prepared.app_url == location.database_url
        assert "the database is not reachable yet" in caplog.text
    finally:
        back.join()
        server.stop()


def test_a_refused_password_is_not_waited_for(pgdata: Path) -> None:
    server = EmbeddedPostgres(pgdata)
    server.start()
    try:
        wrong = server.role_url(server.app_role).replace(server.passwords[server.app_role], "wrong")
        started = time.monotonic()
        refused = (psycopg.OperationalError, sqlalchemy.exc.OperationalError)
        with pytest.raises(refused, match="password authentication failed"):
            prepare_database(DatabaseLocation(wrong, "", pgdata.parent, server.app_role), revision=None)
        assert time.monotonic() - started < 30, "a mistake of configuration is reported at once"
    finally:
        server.stop()
