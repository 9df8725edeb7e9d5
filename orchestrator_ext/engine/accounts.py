"""Which system account a run executes as, and the folders it may write.

``OrchestratorApp.run_accounts`` chooses, mode by mode:

* ``""`` (personal mode): runs execute as the worker's own account, as the
  person's own notebooks do; nothing separates a run from the worker but the
  scrubbed environment and the worker being non-dumpable.
* ``"per-organization"`` (team mode): every organization's runs execute as a
  system account of its own, ``orch-<12 hex digits of its id's hash>``, made
  on demand like the users' ``jupyter-<name>`` accounts (own group, no login
  shell, private home). The worker runs as root and only forks down to them.
* ``"uid:<N>"`` (Kubernetes worker pods): every run drops to the fixed,
  unprivileged uid and gid N, distinct from the worker's.

A run's folders (its working directory, a kernel's connection file and
sockets, a fork server's home) are made by the worker under a root folder
only its owner can list (mode 0711) and handed to the run's account (0700),
so no other account can open them. Each worker keeps them in a folder of its
own, ``worker-<pid>-<start time>``: a worker that starts removes those of
workers that died (killed, they could not clean up).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import shutil
import stat
import subprocess  # nosec B404 - useradd and usermod, no shell
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..db.handles import process_start

PER_ORGANIZATION = "per-organization"
UID_PREFIX = "uid:"
ACCOUNT_PREFIX = "orch-"
#: what a worker needs to start runs as other accounts when it is not all of root (a Kubernetes pod: run
#: it as uid 0 with only these): switch to the run's uid and gid, hand it its folders, kill its processes,
#: reach its kernels' sockets and remove its folders afterwards
CAPABILITIES = {"CHOWN": 0, "DAC_OVERRIDE": 1, "KILL": 5, "SETGID": 6, "SETUID": 7}
NOLOGIN = "/usr/sbin/nologin"
#: a worker's own folder under the runs' root: worker-<pid>-<process start time>
WORKER_FOLDER = "worker-"


class RunAccountsError(ValueError):
    """The ``run_accounts`` setting cannot be used here (unknown value, or the worker lacks the rights)."""


@dataclass(frozen=True)
class RunAccount:
    """The uid and gid a run executes as (``name``: its system account, when it has one)."""

    uid: int
    gid: int
    name: str = ""

    def popen_kwargs(self) -> dict[str, Any]:
        """What ``subprocess``/``asyncio`` take to start a child as this account, with no other groups."""
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def give(self, path: Path) -> None:
        os.chown(path, self.uid, self.gid)


def account_name(org_id: uuid.UUID | str) -> str:
    """The system account of an organization's runs: short, stable, and telling nothing of the organization."""
    return ACCOUNT_PREFIX + hashlib.sha256(str(org_id).encode()).hexdigest()[:12]


def ensure_system_account(name: str, home: Path, *, login_shell: str, comment: str) -> pwd.struct_passwd:
    """A system account with its own group and a private home (mode 0700), made if missing (as root)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        command = [useradd, "--create-home", "--home-dir", str(home), "--shell", login_shell, "--user-group"]
        made = subprocess.run(  # noqa: S603  # nosec B603 - a fixed program; names from system_name or the operator
            [*command, "--comment", comment, name], check=False, capture_output=True, text=True
        )
        try:
            entry = pwd.getpwnam(name)
        except KeyError:  # not made by a concurrent call either
            raise subprocess.CalledProcessError(made.returncode, command, made.stdout, made.stderr) from None
    if entry.pw_uid == 0:
        raise ValueError(f"'{name}' is the superuser, not an account of its own")
    if Path(entry.pw_dir) != home and entry.pw_gecos == comment:  # ours, and the configuration moved it
        usermod = shutil.which("usermod") or "/usr/sbin/usermod"
        moved = [usermod, "--home", str(home), name]
        subprocess.run(moved, check=True, capture_output=True, text=True)  # noqa: S603  # nosec B603 - as above
        entry = pwd.getpwnam(name)
    Path(entry.pw_dir).mkdir(parents=True, exist_ok=True)
    # by a handle on the folder itself: a link put in its place is refused, never followed by root's chown
    fd = os.open(entry.pw_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchown(fd, entry.pw_uid, entry.pw_gid)
        os.fchmod(fd, 0o700)  # private, whatever the system's HOME_MODE
    finally:
        os.close(fd)
    return entry


def runs_root(path: Path | None) -> Path:
    """The folder runs' folders are made in: this process's, mode 0711 (others may enter a folder whose
    name they know, never list it), in folders every account may pass through (default: under /tmp,
    whatever TMPDIR says). Refuses one that another account owns, or that runs could not reach."""
    root = (path or Path("/tmp") / f"orchestrator-runs-{os.geteuid()}").absolute()  # noqa: S108  # nosec B108 - owner and symlink checked below
    root.mkdir(parents=True, exist_ok=True, mode=0o711)
    info = root.lstat()
    if info.st_uid != os.geteuid() or root.is_symlink():
        raise RunAccountsError(f"{root} belongs to another account: runs' folders cannot be made there")
    os.chmod(root, 0o711)  # noqa: S103  # nosec B103 - others enter only the folders made theirs (0700)
    closed = [parent for parent in root.parents if not parent.stat().st_mode & 0o001]
    if closed:
        raise RunAccountsError(f"runs cannot reach {root}: {closed[0]} is closed to other accounts (set run_dir)")
    return root


def worker_folder(root: Path | None, *, shared: bool) -> Path:
    """This worker's own folder for its runs' folders, under ``root`` (default: a folder of this account's
    under the temporary directory): ``worker-<pid>-<start>``, named after the process so that another worker
    can tell it was left by a dead one (:func:`sweep_orphans`). ``shared``: runs of other accounts pass
    through it to reach their own folders (0711, like :func:`runs_root`), else only this account enters."""
    base = _own_folder(root, 0o711 if shared else 0o700)
    pid = os.getpid()
    folder = base / f"{WORKER_FOLDER}{pid}-{process_start(pid)}"
    folder.mkdir(mode=0o711 if shared else 0o700, exist_ok=True)
    os.chmod(folder, 0o711 if shared else 0o700)  # whatever the umask
    return folder


def _own_folder(root: Path | None, mode: int) -> Path:
    """``root``, else the temporary directory's ``orchestrator-runs-<euid>``: made if missing, and refused
    unless it is a folder (not a link) of this account's, set to ``mode``. The default one, when another
    account made it first (or planted a link), is replaced by a fresh private folder (``mkdtemp``)."""
    base = root or Path(tempfile.gettempdir()) / f"orchestrator-runs-{os.geteuid()}"
    base.mkdir(parents=True, exist_ok=True, mode=mode)
    info = base.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        if root is not None:
            raise RunAccountsError(f"{root} is a link or another account's folder: runs' folders cannot be made there")
        base = Path(tempfile.mkdtemp(prefix=f"{base.name}-"))
    os.chmod(base, mode)
    return base


def sweep_orphans(root: Path) -> list[Path]:
    """Remove the folders of workers that died without cleaning up (killed): a run's directory, a kernel's
    sockets, a fork server's home. Those of living workers are left alone (their pid and start time match)."""
    removed = []
    for folder in root.glob(f"{WORKER_FOLDER}*-*"):
        pid, _, start = folder.name[len(WORKER_FOLDER) :].partition("-")
        if not pid.isdigit() or str(process_start(int(pid))) == start:
            continue
        info = folder.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():  # a link, or not a worker's of ours
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def closed_socket(url: str) -> Path | None:
    """The folder of a PostgreSQL URL's Unix socket when runs of other accounts cannot reach it (as the
    embedded server's, inside its private data directory), else None."""
    parts = urlsplit(url)
    host = (parse_qs(parts.query).get("host") or [parts.hostname or ""])[0]
    if not host.startswith("/"):
        return None
    folder = Path(host)
    return next((f for f in (folder, *folder.parents) if f.exists() and not f.stat().st_mode & 0o001), None)


def missing_capabilities() -> list[str]:
    """The :data:`CAPABILITIES` this process lacks (Linux; empty when it has them all, e.g. as root)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return sorted(CAPABILITIES)
    effective = next((int(line.split()[1], 16) for line in status.splitlines() if line.startswith("CapEff:")), 0)
    return sorted(name for name, bit in CAPABILITIES.items() if not effective & (1 << bit))


class RunAccounts:
    """Resolves an organization to the account its runs execute as, per the ``run_accounts`` setting."""

    def __init__(self, setting: str, homes: Path | None = None) -> None:
        self.setting = setting.strip()
        self.homes = homes
        self._fixed: RunAccount | None = None
        self._made: dict[str, RunAccount] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        if self.setting.startswith(UID_PREFIX):
            number = self.setting[len(UID_PREFIX) :]
            if not number.isdigit() or int(number) == 0:
                raise RunAccountsError(f"run_accounts '{self.setting}': write uid:<N> with N an unprivileged uid")
            self._fixed = RunAccount(int(number), int(number))
        elif self.setting not in ("", PER_ORGANIZATION):
            raise RunAccountsError(f"run_accounts '{self.setting}': use '', '{PER_ORGANIZATION}' or 'uid:<N>'")

    @property
    def separate(self) -> bool:
        """Whether runs execute under other accounts than the worker's (then pools are per organization)."""
        return bool(self.setting)

    def check(self) -> None:
        """Refuse to start a worker that could not switch accounts, saying what it lacks."""
        if not self.separate:
            return
        if self._fixed is not None and self._fixed.uid == os.geteuid():
            raise RunAccountsError(f"run_accounts '{self.setting}' is the worker's own uid: choose another")
        missing = missing_capabilities()
        if self.setting == PER_ORGANIZATION and os.geteuid() != 0:
            missing = missing or ["root (accounts are made with useradd)"]
        if missing:
            raise RunAccountsError(
                f"run_accounts '{self.setting}' needs a worker that may switch accounts; it lacks: {', '.join(missing)}"
            )

    def pool_key(self, org_id: uuid.UUID | str) -> str | None:
        """What warm kernels and fork servers are kept apart by: the organization, unless runs share the
        worker's own account (personal mode: one person)."""
        return str(org_id) if self.separate else None

    async def for_org(self, org_id: uuid.UUID | str) -> RunAccount | None:
        """The account of this organization's runs (None: the worker's own), made on first use."""
        if not self.separate:
            return None
        if self._fixed is not None:
            return self._fixed
        name = account_name(org_id)
        if name in self._made:
            return self._made[name]
        async with self._locks.setdefault(name, asyncio.Lock()):
            if name not in self._made:
                entry = await asyncio.to_thread(self._ensure, name, str(org_id))
                self._made[name] = RunAccount(entry.pw_uid, entry.pw_gid, name)
        return self._made[name]

    def _ensure(self, name: str, org_id: str) -> pwd.struct_passwd:
        homes = runs_root(self.homes)
        return ensure_system_account(
            name, homes / name, login_shell=NOLOGIN, comment=f"Orchestrator runs of organization {org_id}"
        )
