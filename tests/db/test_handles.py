"""The embedded server's list of holders under processes that join and leave at once.

Every process of ours that uses the embedded PostgreSQL adds its pid to
``pgdata/.handle_pids.json`` under the wheel's inter-process lock, and the one
that removes the last pid stops the server. A read made without the lock once
wrote the list back (less the dead): it could overwrite a pid another process
had just added, and the last "holder" then stopped the server under it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import fasteners

from orchestrator_ext.db.handles import HANDLES_FILE, LiveHandles

PROCESSES = 6
ROUNDS = 40
#: entries of killed holders added at each round
DEAD = 20
#: processes reading the list without the lock meanwhile
READERS = 2


def _killed_holders(path: Path, count: int) -> None:
    """Entries of holders killed before they let go (pids no process has): they stay until a write."""
    entries = json.loads(path.read_text())
    path.write_text(json.dumps([*entries, *({"pid": 2**22 + n, "start": 5} for n in range(count))]))


def _read_until(path: Path, done: Any) -> None:
    """Read the list without the lock, again and again (as a process logging whether it is the last did)."""
    handles = LiveHandles(path)
    while not done.is_set():
        handles.get()


def _join_and_leave(path: Path, lock_path: Path, holding: Any, wrong: Any) -> None:
    """ROUNDS times: join (holders killed meanwhile leave their entries), check this one is still listed
    a moment later, leave; count what a lost entry costs."""
    lock = fasteners.InterProcessLock(lock_path)
    handles = LiveHandles(path)
    me = os.getpid()
    for _ in range(ROUNDS):
        with lock:
            handles.get_and_add(me)
            _killed_holders(path, DEAD)
            with holding.get_lock():
                holding.value += 1
        time.sleep(0.002)
        with lock:
            if me not in [pid for pid, _ in handles.entries()]:
                wrong.value += 1  # dropped while it held the server
            with holding.get_lock():
                holding.value -= 1
            if handles.get_and_remove(me) == [me] and holding.value > 0:
                wrong.value += 1  # "last": it would stop the server under a living holder


def test_a_read_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / HANDLES_FILE
    written = json.dumps([{"pid": os.getpid(), "start": None}, {"pid": 2**22 + 7, "start": 5}])
    path.write_text(written)
    before = path.stat()
    handles = LiveHandles(path)
    assert handles.get() == [os.getpid()]
    assert path.read_text() == written
    assert path.stat().st_ino == before.st_ino
    handles.get_and_add(os.getppid())  # under the lock, in use: a write drops the dead
    assert [pid for pid, _ in handles.entries()] == [os.getpid(), os.getppid()]


def test_holders_joining_and_leaving_at_once_never_lose_one(tmp_path: Path) -> None:
    path, lock_path = tmp_path / HANDLES_FILE, tmp_path / "lock"
    context = multiprocessing.get_context("fork")
    holding, wrong = context.Value("i", 0), context.Value("i", 0)
    workers = [
        context.Process(target=_join_and_leave, args=(path, lock_path, holding, wrong)) for _ in range(PROCESSES)
    ]
    done = context.Event()
    readers = [context.Process(target=_read_until, args=(path, done)) for _ in range(READERS)]
    for process in [*workers, *readers]:
        process.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    done.set()
    for reader in readers:
        reader.join(timeout=30)
        assert reader.exitcode == 0
    assert wrong.value == 0, "a holder was dropped from the list, or a leaving one took itself for the last"
    assert LiveHandles(path).get() == []
