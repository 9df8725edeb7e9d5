"""n8n under a system account of its own (team mode): it reaches nothing of the platform's.

Where the platform runs as root (team mode: the hub's service, ``jupyter
orchestrator n8n serve`` for each organization), each n8n instance runs as an
unprivileged account of its own, ``orch-n8n-<8 hex digits of its database's
name>``, made like the runs' accounts (:func:`..engine.accounts.ensure_system_account`:
own group, no login shell). Its home is the instance's data folder (mode
0700, its own): n8n's settings, its encryption key, its owner's password and
its log. It holds no other group, so the platform's files stay closed to it:
PostgreSQL's data directory (0700), the key ring and the roles' passwords
(0600), the runs' folders (0700, each run's account's). It reaches its
database through a socket folder other accounts may enter (the embedded
server's runs' folder, ``ORCHESTRATOR_RUNS_SOCKET_DIR``) or TCP, as its own
password-authenticated role (:mod:`.database`).

``--account`` of ``n8n serve`` chooses: ``auto`` (an account of its own when
run as root, else the caller's), ``none`` (the caller's), or an account name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import replace
from pathlib import Path

from ..engine.accounts import NOLOGIN, RunAccount, closed_socket, ensure_system_account
from .database import N8nDatabase

PREFIX = "orch-n8n-"
COMMENT = "Orchestrator n8n instance"


class N8nAccountError(ValueError):
    """n8n cannot run under its own account here (a folder or socket it could not reach, not root)."""


def account_name(instance: str) -> str:
    """The account of the instance whose database is ``instance``: stable, short, telling nothing more."""
    return PREFIX + hashlib.sha256(instance.encode()).hexdigest()[:8]


def chosen(setting: str, instance: str) -> str | None:
    """The account name ``--account`` asks for (None: run n8n as this process's account)."""
    value = setting.strip() or "auto"
    if value == "none" or (value == "auto" and os.geteuid() != 0):
        return None
    return account_name(instance) if value == "auto" else value


def closed_parent(folder: Path) -> Path | None:
    """The first folder above ``folder`` another account may not pass through, if any."""
    return next((p for p in folder.absolute().parents if p.exists() and not p.stat().st_mode & 0o001), None)


def prepare(name: str, data_dir: Path, programs: tuple[Path, ...] = ()) -> RunAccount:
    """The account (made if missing), owning ``data_dir`` and all in it; refused where it could not reach it
    or its ``programs`` (Node and n8n: installed under the Jupyter data dir of whoever installed them)."""
    if os.geteuid() != 0:
        raise N8nAccountError(f"n8n runs under the account '{name}' only when started as root")
    closed = closed_parent(data_dir)
    if closed is not None:
        raise N8nAccountError(
            f"n8n's account cannot reach its data folder {data_dir}: {closed} is closed to other accounts "
            "(give --data in a folder others may pass through, e.g. /var/lib/orchestrator/n8n)"
        )
    for program in programs:
        closed = closed_parent(program)
        if closed is not None:
            raise N8nAccountError(
                f"n8n's account cannot reach {program}: {closed} is closed to other accounts (install n8n where "
                "others may read it: JUPYTER_DATA_DIR=/usr/local/share/jupyter jupyter orchestrator n8n install)"
            )
    entry = ensure_system_account(name, data_dir.absolute(), login_shell=NOLOGIN, comment=COMMENT)
    account = RunAccount(entry.pw_uid, entry.pw_gid, name)
    top = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        give(top, account)  # files an earlier n8n wrote as root
    finally:
        os.close(top)
    return account


def give(folder: int, account: RunAccount) -> None:
    """The open folder ``folder`` and everything in it to ``account``, never through a link: the account owns
    these folders and may swap one for a link to /etc while this runs, so each name is changed relative to its
    folder's descriptor without following it, and each sub-folder is entered by a descriptor opened without
    following a link (one swapped meanwhile fails to open and is left alone)."""
    os.fchown(folder, account.uid, account.gid)
    with os.scandir(folder) as entries:
        for entry in list(entries):
            with contextlib.suppress(FileNotFoundError):
                os.chown(entry.name, account.uid, account.gid, dir_fd=folder, follow_symlinks=False)
            if not entry.is_dir(follow_symlinks=False):
                continue
            try:
                inner = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
            except OSError:  # gone, or no longer a folder
                continue
            try:
                give(inner, account)
            finally:
                os.close(inner)


def reachable(db: N8nDatabase, runs_host: str | None) -> N8nDatabase:
    """``db`` as n8n's account reaches it: by the runs' socket folder where the server has one; refused when
    its socket's folder is closed to other accounts (the embedded server's own, inside its data directory)."""
    if runs_host:
        db = replace(db, host=runs_host)
    closed = closed_socket(f"postgresql://x@/x?host={db.host}") if db.host.startswith("/") else None
    if closed is not None:
        raise N8nAccountError(
            f"n8n's account cannot reach PostgreSQL's socket in {db.host} ({closed} is closed to other accounts): "
            "set ORCHESTRATOR_RUNS_SOCKET_DIR to a folder others may enter, or use a server reached by TCP"
        )
    return db
