"""When a fork server's spare warms up: at once where a CPU is free for it (runs one after another: the next
is taken within milliseconds of the spare's fork), after a short wait on a loaded machine, only once the server
went idle while it has as many runs under way as CPUs (a saturated machine spends its CPU on runs)."""

from __future__ import annotations

import itertools
import os
import socket
import struct
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from orchestrator_runtimes import forkserver
from orchestrator_runtimes.forkserver import SATURATED_WARM_AFTER_SECONDS, WARM_AFTER_SECONDS, Spares


@pytest.fixture
def spares(monkeypatch: pytest.MonkeyPatch) -> Iterator[Spares]:
    monkeypatch.setattr(forkserver, "BUSY_RUNS", 2)  # two CPUs, whatever this machine has
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    made = Spares(listener, [])
    yield made
    listener.close()
    os.close(made.taken_r)
    os.close(made.taken_w)


def under_way(spares: Spares, runs: int, waiting: int = 2) -> None:
    """``runs`` taken and not ended, ``waiting`` spares not taken (made-up pids: nothing is forked)."""
    spares.waiting = set(range(1, waiting + 1))
    spares.forked = spares.waiting | set(range(100, 100 + runs))


def load(monkeypatch: pytest.MonkeyPatch, average: float) -> None:
    monkeypatch.setattr(forkserver.os, "getloadavg", lambda: (average, 0.0, 0.0))


def test_a_spare_warms_at_once_while_a_cpu_is_free(spares: Spares, monkeypatch: pytest.MonkeyPatch) -> None:
    load(monkeypatch, 1.5)
    under_way(spares, 0)
    assert spares.warm_after() == 0.0
    under_way(spares, 1)  # one run after another: the one the spare was forked for
    assert spares.warm_after() == 0.0


def test_a_spare_waits_on_a_loaded_machine_and_in_a_saturated_server(
    spares: Spares, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(monkeypatch, 3.0)
    under_way(spares, 0)
    assert spares.warm_after() == WARM_AFTER_SECONDS  # an idle server on a loaded machine: only once idle
    load(monkeypatch, 0.0)
    under_way(spares, 2)
    assert spares.warm_after() == SATURATED_WARM_AFTER_SECONDS
    under_way(spares, 5)
    assert spares.warm_after() == SATURATED_WARM_AFTER_SECONDS


def test_a_run_that_ended_is_not_counted_when_the_next_spare_is_forked(
    spares: Spares, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs one after another, each ended before the next is taken: every spare forked warms at once (the
    server reaps the ended run before it forks the next spare, not after)."""
    load(monkeypatch, 0.0)
    pids = itertools.count(1)
    monkeypatch.setattr(forkserver.os, "fork", lambda: next(pids))  # the parent's side only: no child
    decided: list[float | None] = []
    real = Spares.warm_after
    monkeypatch.setattr(Spares, "warm_after", lambda self: decided.append(real(self)) or decided[-1])
    ended: list[int] = []

    def reap() -> list[tuple[int, int]]:
        reaped = [(pid, 0) for pid in ended]
        ended.clear()
        return reaped

    monkeypatch.setattr(forkserver, "reap", reap)
    # the made-up pids are no children of this process: nothing to sweep (a sweep here would kill this
    # process's real children, the test database among them)
    monkeypatch.setattr(spares, "sweeper", SimpleNamespace(after=lambda ended, forked: None))
    # each turn of the server's loop: the run taken the turn before has ended, and the next spare is taken
    turns = iter([(None, 1), (1, 2), (2, 3), (3, 4), (4, 5)])

    def alive() -> bool:
        turn = next(turns, None)
        if turn is None:
            return False
        finished, taken = turn
        if finished is not None:
            ended.append(finished)
        os.write(spares.taken_w, struct.pack("=i", taken))
        return True

    spares.serve(alive)
    assert decided == [0.0] * len(decided)
    assert len(decided) == 2 + 5  # the first two spares, and one for each taken
