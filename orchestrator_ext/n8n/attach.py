"""Root beside the embedded PostgreSQL of another account (the hub's service's): n8n's databases made as that account.

In team mode the embedded PostgreSQL, its roles' passwords and the key ring are
the hub's Orchestrator service's files (its account's, 0700 and 0600).
``jupyter orchestrator n8n serve`` and the hub's n8n service run as root, so
that each instance runs under an account of its own (:mod:`.account`), and
root must neither join that server as itself (PostgreSQL's files are not root's
to open: "global/pg_filenode.map: Permission denied") nor write in the
service's folder (a file root wrote there would be root's, which the service
could no longer read; a link the service put there would be followed). As the
worker does (``--WorkerCommand.prepare_as``), a child process under the
service's account does what needs its files: it makes n8n's roles and
databases (their passwords kept in the service's passwords file) and reads the
key ring, and hands back only the URLs, the roles' passwords and the keys.

``python -I -m orchestrator_ext.n8n.attach <data_dir> <database>...`` is that
child: one JSON line on its standard output.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import subprocess  # nosec B404 - for its timeout: this module runs as the service's account (run_as)
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..db.embedded import APP_DATABASE, PASSWORDS_FILE, superuser_url
from ..security.run_as import run_as
from .database import N8nDatabase, provision

KEYS_FILE = "keys.json"


class AttachError(RuntimeError):
    """The child could not make n8n's databases (the server not running, the account refused)."""


@dataclass(frozen=True)
class Attached:
    """What the child handed back: the platform's database as its superuser, n8n's databases, the key ring."""

    admin_url: str
    databases: dict[str, N8nDatabase]
    #: the key ring kept in the data folder (``id:key,...``), empty where there is none (keys set by the operator)
    keys: str


def owner_of(data_dir: Path) -> pwd.struct_passwd | None:
    """The account whose embedded PostgreSQL is under ``data_dir``, where this process is root and it is another
    account's (the hub's service's); else None (this process prepares its database itself)."""
    if os.geteuid() != 0:
        return None
    try:
        uid = (data_dir / "pgdata").lstat().st_uid
    except FileNotFoundError:
        return None
    if uid == 0:
        return None
    return pwd.getpwuid(uid)


def attach_as(account: pwd.struct_passwd, data_dir: Path, names: Sequence[str]) -> Attached:
    """n8n's databases ``names`` on the embedded server under ``data_dir``, made as ``account`` (its owner)."""
    command = [sys.executable, "-I", "-m", __name__, str(data_dir.absolute()), *names]
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": account.pw_dir, "LANG": "C.UTF-8"}
    try:
        done = run_as(account, command, timeout=120, cwd="/", env=environment)  # as the embedded server's account
    except subprocess.TimeoutExpired as exc:
        raise AttachError(f"making n8n's database as {account.pw_name} took over {exc.timeout:g} s") from exc
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip())[-2000:]
        raise AttachError(f"making n8n's database as {account.pw_name} failed: {said}")
    handed = json.loads(done.stdout.strip().splitlines()[-1])
    databases = {name: N8nDatabase(**fields) for name, fields in handed["databases"].items()}
    return Attached(str(handed["admin_url"]), databases, str(handed["keys"]))


def main(arguments: Sequence[str]) -> int:
    """The child: make each database (and its role), print the superuser's URL, the databases and the keys."""
    data_dir, names = Path(arguments[0]), arguments[1:]
    if not (data_dir / "pgdata" / "postmaster.pid").is_file():
        print(
            f"the embedded PostgreSQL under {data_dir} is not running: start the service that owns it first "
            "(the hub's Orchestrator service)",
            file=sys.stderr,
        )
        return 2
    admin = superuser_url(data_dir, "postgres")
    databases = {
        name: dataclasses.asdict(provision(admin, data_dir / PASSWORDS_FILE, role=name, database=name))
        for name in names
    }
    keys_file = data_dir / KEYS_FILE
    keys = str(json.loads(keys_file.read_text())["keys"]) if keys_file.is_file() else ""
    print(json.dumps({"admin_url": superuser_url(data_dir, APP_DATABASE), "databases": databases, "keys": keys}))
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a child process (tests reach it through attach_as)
    sys.exit(main(sys.argv[1:]))
