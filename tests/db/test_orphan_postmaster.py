"""The embedded postmaster left running when every process holding it was killed (SIGKILL).

Nobody let go, so nobody stopped it: it runs on, held by nobody, until the next
start. That start stops it (after a look that its holders are all dead) and
starts a server of its own, which the last of its own holders stops again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from orchestrator_ext.db.embedded import EmbeddedPostgres
from orchestrator_ext.db.handles import handle_pids, process_start
from tests.personal_server import postgres_running_on, wait_postgres_stopped

#: a process holding the server, killed before it lets go
HOLDER = (
    "import sys\nfrom pathlib import Path\nfrom orchestrator_ext.db.embedded import EmbeddedPostgres\n"
    "server = EmbeddedPostgres(Path(sys.argv[1]))\nserver.start()\nprint('holding', flush=True)\nsys.stdin.read()\n"
)


@pytest.fixture
def pgdata(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pgdata"
    yield path
    for process in postgres_running_on(path):  # whatever a failed test left behind
        process.kill()


def _postmaster(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


@contextlib.contextmanager
def _logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """caplog's handler on the logger itself: a server started earlier in the session may have configured
    the "orchestrator" loggers not to propagate to the root logger, where caplog listens."""
    logger = logging.getLogger("orchestrator.db")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="orchestrator.db"):
            yield
    finally:
        logger.removeHandler(caplog.handler)


def _hold_then_die(pgdata: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(pgdata)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    holder.kill()
    holder.communicate(timeout=60)


def test_the_next_start_reaps_a_postmaster_whose_holders_were_all_killed(
    pgdata: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _hold_then_die(pgdata)
    orphan = _postmaster(pgdata)
    assert process_start(orphan) is not None, "the postmaster outlives its killed holder (nothing can stop it)"
    assert handle_pids(pgdata) == []
    server = EmbeddedPostgres(pgdata)
    with _logs(caplog):
        server.start()
    try:
        assert process_start(orphan) is None, "the orphan was adopted, not stopped"
        assert _postmaster(pgdata) != orphan
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
        running = _postmaster(pgdata)
        _hold_then_die(pgdata)  # a dead holder beside a living one: not an orphan
        second = subprocess.run(
            [sys.executable, "-c", HOLDER, str(pgdata)], input="", capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 0, second.stderr
        assert _postmaster(pgdata) == running
        assert handle_pids(pgdata) == [os.getpid()]
    finally:
        with _logs(caplog):
            first.stop()
    assert "embedded PostgreSQL stopped" in caplog.text  # the last holder, as the list said under the lock
    assert wait_postgres_stopped(pgdata, 30) == []
