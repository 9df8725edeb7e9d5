"""When a fork server's spare warms up: at once where a CPU is free for it (runs one after another: the next
is taken within milliseconds of the spare's fork), after a short wait on a loaded machine, never while the
server has as many runs under way as CPUs (a saturated machine spends its CPU on runs)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from orchestrator_runtimes import forkserver
from orchestrator_runtimes.forkserver import BUSY_RUNS, WARM_AFTER_SECONDS, Spares


@pytest.fixture
def spares() -> Iterator[Spares]:
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


def test_a_spare_warms_at_once_while_a_cpu_is_free(spares: Spares, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forkserver.os, "getloadavg", lambda: (BUSY_RUNS - 0.5, 0.0, 0.0))
    under_way(spares, 0)
    assert spares.warm_after() == 0.0
    under_way(spares, BUSY_RUNS - 1)  # one run after another: the one the spare was forked for
    assert spares.warm_after() == 0.0


def test_a_spare_waits_on_a_loaded_machine_and_never_warms_in_a_saturated_server(
    spares: Spares, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forkserver.os, "getloadavg", lambda: (BUSY_RUNS + 1.0, 0.0, 0.0))
    under_way(spares, 0)
    assert spares.warm_after() == WARM_AFTER_SECONDS  # an idle server on a loaded machine: only once idle
    monkeypatch.setattr(forkserver.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    under_way(spares, BUSY_RUNS)
    assert spares.warm_after() is None
    under_way(spares, BUSY_RUNS + 3)
    assert spares.warm_after() is None
