"""Team mode: n8n runs as an unprivileged account of its own that reaches nothing of the platform's.

As root (as ``jupyter orchestrator n8n serve`` runs in team mode): the
instance's account is made like the runs' accounts, owns the instance's data
folder, and n8n runs as it on its own password-authenticated role, reaching
PostgreSQL by the socket folder other accounts may enter. The platform's key
ring and PostgreSQL's data directory stay closed to it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from orchestrator_ext.db.embedded import EmbeddedPostgres
from orchestrator_ext.n8n import account, database, process
from orchestrator_ext.n8n.install import Installation
from orchestrator_ext.security.crypto import load_or_create_keyring

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(os.geteuid() != 0, reason="making the n8n account needs root (as the team mode's service)"),
]


@pytest.fixture(scope="module")
def platform() -> Iterator[tuple[Path, EmbeddedPostgres]]:
    """A platform's data folder as the team mode keeps it: its PostgreSQL (with a socket folder others may enter),
    its key ring (0600), a folder for n8n's data others may pass through."""
    root = Path(tempfile.mkdtemp(prefix="orch-n8n-account-"))
    root.chmod(0o755)
    server = EmbeddedPostgres(root / "pgdata", runs_socket_dir=root / "sock")
    server.start()
    load_or_create_keyring(root / "keys.json")
    try:
        yield root, server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def as_account(user: pwd.struct_passwd, *command: str) -> subprocess.CompletedProcess[str]:
    """``command`` run with exactly the credentials n8n's process has (its uid and gid, no other group)."""
    return subprocess.run(
        list(command), user=user.pw_uid, group=user.pw_gid, extra_groups=[], capture_output=True, text=True, check=False
    )


def test_n8n_runs_as_its_own_account_and_cannot_read_the_platforms_files(
    platform: tuple[Path, EmbeddedPostgres], n8n_installation: Installation
) -> None:
    root, server = platform
    name = f"n8n_acct_{uuid.uuid4().hex[:6]}"
    db = database.provision(server.admin_url("postgres"), server.passwords_file, role=name, database=name)
    with pytest.raises(account.N8nAccountError, match="closed to other accounts"):
        account.reachable(db, None)  # the server's own socket is inside its data directory
    db = account.reachable(db, server.runs_host)
    data_dir = root / "n8n"
    runs_as = account.prepare(account.account_name(name), data_dir, (n8n_installation.node, n8n_installation.n8n))
    user = pwd.getpwnam(runs_as.name)
    try:
        assert runs_as.name.startswith("orch-n8n-")
        assert user.pw_uid != 0
        assert user.pw_shell.endswith("nologin")
        assert (data_dir.stat().st_uid, data_dir.stat().st_mode & 0o777) == (user.pw_uid, 0o700)
        running = process.start(n8n_installation, data_dir, database=db, account=runs_as)
        try:
            process.wait_ready(running)  # migrated its database as its own role, through the runs' socket folder
            node = psutil.Process(running.process.pid)
            assert node.uids().real == node.uids().effective == user.pw_uid
            assert node.gids().real == user.pw_gid
            status = Path(f"/proc/{node.pid}/status").read_text().splitlines()
            groups = next(line for line in status if line.startswith("Groups:")).split()[1:]
            assert groups in ([], [str(user.pw_gid)])  # no group of the platform's
        finally:
            process.stop(running)
        for secret in (root / "keys.json", server.passwords_file, root / "pgdata" / "PG_VERSION"):
            denied = as_account(user, "cat", str(secret))
            assert denied.returncode != 0
            assert "Permission denied" in denied.stderr, denied.stderr
        assert "Permission denied" in as_account(user, "ls", str(root / "pgdata")).stderr
        assert as_account(user, "cat", str(data_dir / "n8n.log")).returncode == 0  # its own files it reads
    finally:
        subprocess.run(["userdel", runs_as.name], check=False, capture_output=True)
