"""Run n8n: headless, on the loopback, telemetry and update checks off, dying with its parent.

:func:`n8n_environment` is the whole configuration (n8n reads only its
environment); :func:`start` starts it in its own process group with a
parent-death signal, so nothing outlives the process that started it, start-up
included; :func:`wait_ready` polls ``/healthz/readiness`` (``/healthz`` answers
before the database is migrated); :func:`stop` ends the group.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import socket
import stat
import subprocess  # nosec B404 - starts our own n8n, no shell
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from orchestrator_runtimes.forkserver import die_with_parent

from ..engine.accounts import RunAccount
from .database import N8nDatabase
from .install import Installation

#: n8n must not phone home, look for updates or templates, or wait on a network it cannot reach
OFFLINE = {
    "N8N_DIAGNOSTICS_ENABLED": "false",
    "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
    "N8N_TEMPLATES_ENABLED": "false",
    "N8N_PERSONALIZATION_ENABLED": "false",
    "N8N_DISABLED_MODULES": "mcp-registry",
    "N8N_HIRING_BANNER_ENABLED": "false",
    "EXTERNAL_FRONTEND_HOOKS_URLS": "",
    "N8N_DIAGNOSTICS_CONFIG_FRONTEND": "",
    "N8N_DIAGNOSTICS_CONFIG_BACKEND": "",
}
#: nodes a workflow must not use, whatever n8n's defaults (names of the pinned n8n-nodes-base's known/nodes.json):
#: shell commands, the machine's files (read, write, watch), local git repositories
EXCLUDED_NODES = (
    "n8n-nodes-base.executeCommand",
    "n8n-nodes-base.localFileTrigger",
    "n8n-nodes-base.readWriteFile",
    "n8n-nodes-base.readBinaryFile",
    "n8n-nodes-base.readBinaryFiles",
    "n8n-nodes-base.writeBinaryFile",
    "n8n-nodes-base.git",
)


class N8nFileError(RuntimeError):
    """A file of n8n's data folder the platform writes (its log, its port) is not a plain file of n8n's or the
    platform's own: a link, a hard link to another file, a FIFO. The folder belongs to n8n's account, which could
    plant one there to have the platform (root, in team mode) write elsewhere."""


@dataclass
class N8nProcess:
    """A running n8n: its process, where it listens, where it keeps its data."""

    process: subprocess.Popen[bytes]
    base_url: str
    data_dir: Path
    log_path: Path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def open_in(data_dir: Path, name: str, flags: int, account: RunAccount | None = None) -> int:
    """A descriptor of ``data_dir/name`` opened without following a link (neither ``data_dir`` nor ``name``) and
    checked to be a plain file with one name, of this process's account or ``account``: n8n's account owns the
    folder (:mod:`.account`) and may have put anything there. N8nFileError otherwise; OSError where it is not
    there (without ``O_CREAT``)."""
    folder = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        # O_NONBLOCK: a FIFO put there does not hold the platform at open (it is refused below)
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o600, dir_fd=folder)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):
            raise N8nFileError(f"{data_dir / name} is a link or a FIFO, not n8n's file: remove it") from exc
        raise
    finally:
        os.close(folder)
    info = os.fstat(fd)
    owners = {os.geteuid(), *((account.uid,) if account is not None else ())}
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_uid not in owners:
        os.close(fd)
        raise N8nFileError(f"{data_dir / name} is not a plain file of n8n's own (a hard link, or another's): remove it")
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    return fd


def kept_port(data_dir: Path, host: str = "127.0.0.1", account: RunAccount | None = None) -> int:
    """The port this data folder's n8n listens on: chosen once, then kept in it (its integration names it).
    Read and written without following a link (:func:`open_in`; ``account``: the folder's, whose it may be)."""
    with (
        contextlib.suppress(FileNotFoundError, ValueError),
        os.fdopen(open_in(data_dir, "port", os.O_RDONLY, account)) as kept,
    ):
        return int(kept.read())
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    port = free_port(host)
    with os.fdopen(open_in(data_dir, "port", os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w") as kept:
        kept.write(str(port))
    return port


def n8n_environment(
    install: Installation,
    data_dir: Path,
    port: int,
    host: str = "127.0.0.1",
    database: N8nDatabase | None = None,
    editor_path: str | None = None,
) -> dict[str, str]:
    """n8n's environment: its data folder, the loopback, offline settings, its database (PostgreSQL when given,
    else SQLite in its data folder), and only the variables it needs."""
    passed = {name: os.environ[name] for name in ("LANG", "LC_ALL", "TZ") if name in os.environ}
    return {
        **passed,
        **(database.environment() if database is not None else {}),
        # the editor behind the server's proxy (handlers/n8n_editor.py): its pages under that path, push as plain HTTP
        **({"N8N_PATH": editor_path, "N8N_PUSH_BACKEND": "sse"} if editor_path else {}),
        **OFFLINE,
        "PATH": f"{install.node_bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(data_dir),
        "N8N_USER_FOLDER": str(data_dir),
        "N8N_LISTEN_ADDRESS": host,
        "N8N_HOST": host,
        "N8N_PORT": str(port),
        "N8N_PROTOCOL": "http",
        "WEBHOOK_URL": f"http://{host}:{port}/",
        "N8N_SECURE_COOKIE": "false",
        "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "true",
        "DB_SQLITE_POOL_SIZE": "2",
        "N8N_RUNNERS_ENABLED": "true",
        # the Code node's task runners talk to n8n on a port of their own (5679 by default): two n8n on one
        # machine (a test's, the personal server's) would fight over it, and the second would exit
        "N8N_RUNNERS_BROKER_PORT": str(free_port(host)),
        "N8N_RUNNERS_BROKER_LISTEN_ADDRESS": host,
        # what a workflow may reach, set here rather than left to n8n's defaults: no shell or disk nodes, files only
        # in the instance's own folder (never n8n's settings), no environment variables ($env, process.env)
        "NODES_EXCLUDE": json.dumps(EXCLUDED_NODES),
        "N8N_RESTRICT_FILE_ACCESS_TO": str(data_dir / "files"),
        "N8N_BLOCK_FILE_ACCESS_TO_N8N_FILES": "true",
        "N8N_BLOCK_ENV_ACCESS_IN_NODE": "true",
        "N8N_LOG_LEVEL": "warn",
        "N8N_LOG_OUTPUT": "console",
        "NODE_ENV": "production",
    }


def start(
    install: Installation,
    data_dir: Path,
    port: int = 0,
    host: str = "127.0.0.1",
    *,
    die_with_us: bool = True,
    database: N8nDatabase | None = None,
    editor_path: str | None = None,
    account: RunAccount | None = None,
) -> N8nProcess:
    """Start n8n in the background (its own process group; killed if this process dies), as ``account`` where
    given (:mod:`.account`: its own, owning ``data_dir``; no other group). Its log, ``data_dir/n8n.log``, is
    opened by this process (root, in team mode) in a folder the account owns: never through a link
    (:func:`open_in`), readable by the account and nobody else."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    port = port or free_port(host)
    log_path = data_dir / "n8n.log"
    fd = open_in(data_dir, log_path.name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, account)
    with os.fdopen(fd, "ab") as log:
        os.fchmod(fd, 0o600)
        if account is not None:
            os.fchown(fd, account.uid, account.gid)
        process = subprocess.Popen(  # noqa: S603  # nosec B603 - our own node and n8n
            [str(install.node), str(install.n8n), "start"],
            cwd=data_dir,
            env=n8n_environment(install, data_dir, port, host, database, editor_path),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent if die_with_us else None,  # only sets the parent-death signal
            **(account.popen_kwargs() if account is not None else {}),
        )
    return N8nProcess(process, f"http://{host}:{port}", data_dir, log_path)


def log_tail(n8n: N8nProcess, size: int = 3000) -> str:
    try:
        return n8n.log_path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def wait_ready(n8n: N8nProcess, timeout: float = 180.0) -> float:
    """Block until n8n answers ``/healthz/readiness``; the seconds it took. RuntimeError if it died or hung."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if n8n.process.poll() is not None:
            raise RuntimeError(f"n8n exited with status {n8n.process.returncode}:\n{log_tail(n8n)}")
        try:
            url = f"{n8n.base_url}/healthz/readiness"
            with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310  # nosec B310 - our loopback
                if reply.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"n8n at {n8n.base_url} was not ready within {timeout:g} s:\n{log_tail(n8n)}")


def stop(n8n: N8nProcess, grace: float = 15.0) -> None:
    """Stop n8n and everything it started (its task runners): SIGTERM to the group, SIGKILL after ``grace``."""
    process = n8n.process
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # task runners left behind
    process.wait()
