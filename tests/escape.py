"""What a run starts to escape its containment, and how a test finds what is left of it.

The containment tests (``tests/runtimes/test_containment.py``, ``tests/engine/test_containment_escape.py``)
make a run leave a detached ``sleep`` behind and check that nothing outlives the run. Each such process
sleeps a *mark*, a duration no other process on the machine has, so a test finds exactly its own and kills
whatever is left when it ends, even after a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Iterator

import psutil

#: the double fork: the middle process exits at once, so the ``sleep`` it started is reparented away from
#: the run (a subreaper keeps it, init otherwise), in a session of its own and with no inherited pipes
_DOUBLE_FORK = """\
middle = os.fork()
if middle == 0:
    if os.fork() == 0:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.execvp("sleep", ["sleep", {duration}])
    os._exit(0)
os.waitpid(middle, 0)
"""


def double_forked_sleep(duration: str) -> str:
    """Python source (it needs ``os`` imported) that leaves a ``sleep`` detached from the code running it.

    ``duration`` is a Python expression: ``repr(mark)`` for a mark known when the source is written, or the
    name of a variable the run sets (a notebook's parameter)."""
    return _DOUBLE_FORK.format(duration=duration)


def code_node_source(code: str, then: str = "pass") -> str:
    """A LangGraph code node's ``run`` that runs ``code``, then ``then``, and returns an empty state update."""
    body = "\n".join("    " + line for line in code.strip().splitlines())
    return f"def run(values):\n{body}\n    {then}\n    return '{{}}'\n"


def new_mark() -> str:
    """A sleep duration of about 300 s that no other process has (a random fraction)."""
    return f"300.{random.randrange(10**8):08d}"


def sleeping(*marks: str) -> list[psutil.Process]:
    """The live processes whose last argument is one of ``marks``: the sleeps, and a script given a mark."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info["cmdline"] or [None]
        if cmdline[-1] in marks and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


@contextlib.contextmanager
def fresh_marks(count: int) -> Iterator[tuple[str, ...]]:
    """``count`` marks, for a fixture to yield; whatever still carries one is killed at the end."""
    values = tuple(new_mark() for _ in range(count))
    try:
        yield values
    finally:
        for process in sleeping(*values):
            process.kill()


async def until(condition: Callable[[], bool], within: float) -> bool:
    """Whether ``condition`` holds within ``within`` seconds (polled every 50 ms)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True
