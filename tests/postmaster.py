"""An embedded PostgreSQL of a test's own, and processes that hold it: for the tests that kill its postmaster
or its holders (tests/chaos/test_postgres.py, tests/db/test_orphan_postmaster.py).

Each holder is a real second process (as a worker of the split mode is), so that the list of holders in
``pgdata/.handle_pids.json`` and the last-one-stops-it rule are exercised across processes, not mocked.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.personal_server import postgres_running_on

#: a second process holding the server: it starts (or joins) it, says so, and lets go when its stdin ends
HOLDER = (
    "import sys\nfrom pathlib import Path\nfrom orchestrator_ext.db.embedded import EmbeddedPostgres\n"
    "server = EmbeddedPostgres(Path(sys.argv[1]))\nserver.start()\nprint('holding', flush=True)\nsys.stdin.read()\n"
    "server.stop()\n"
)


@pytest.fixture
def pgdata(tmp_path: Path) -> Iterator[Path]:
    """A fresh data directory, never the session's server; any server a failed test left on it is killed."""
    path = tmp_path / "pgdata"
    yield path
    for process in postgres_running_on(path):
        process.kill()


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def hold(pgdata: Path) -> subprocess.Popen[str]:
    """A holder that has started (or joined) the server on ``pgdata``; ``communicate("")`` lets it go."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(pgdata)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    return holder


def hold_then_die(pgdata: Path) -> None:
    """A holder killed (SIGKILL) before it lets go: its pid stays in the list of holders."""
    holder = hold(pgdata)
    holder.kill()
    holder.communicate(timeout=60)


def hold_and_let_go(pgdata: Path) -> subprocess.CompletedProcess[str]:
    """A holder that starts (or joins) the server and lets go of it at once."""
    return subprocess.run(
        [sys.executable, "-c", HOLDER, str(pgdata)], input="", capture_output=True, text=True, timeout=120
    )
