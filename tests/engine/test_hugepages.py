"""The fork server forks from huge pages: its private memory is folded into 2 MiB pages after the imports
(fewer page-table entries for each fork to copy and each run's exit to drop), and runs forked from it work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from orchestrator_runtimes.hugepages import HUGE_PAGE, private_ranges

from tests.fork_servers import job_messages, running_fork_server

MAPS = """\
55d0c8a00000-55d0c8e2d000 rw-p 00000000 00:00 0                          [heap]
7f1c40000000-7f1c40021000 rw-p 00000000 00:00 0
7f1c44000000-7f1c44700000 rw-p 00000000 00:00 0
7f1c48000000-7f1c48600000 r--p 00000000 fd:01 1234                       /usr/lib/libpython3.11.so.1.0
7f1c4a000000-7f1c4a400000 rw-p 00000000 fd:01 1234                       /usr/lib/libpython3.11.so.1.0
7f1c4c000000-7f1c4c400000 rw-s 00000000 00:01 99                         /dev/zero (deleted)
7ffd1a000000-7ffd1a400000 rw-p 00000000 00:00 0                          [stack]
"""
SPEC = {
    "nodes": [
        {"id": "a", "type": "code", "config": {"source": "def run(values):\n    return 1"}},
        {"id": "b", "type": "code", "config": {"source": "def run(values):\n    return values['a'] + 1"}},
    ],
    "edges": [{"source": "a", "target": "b"}],
}


def test_only_private_anonymous_memory_is_folded_in_whole_huge_pages() -> None:
    ranges = list(private_ranges(MAPS))
    # the heap's (4.2 MiB from an aligned start) two whole 2 MiB pages; the 132 KiB mapping holds none; the
    # 7 MiB one three; a file's pages, shared memory and the stack are left alone
    assert ranges == [(0x55D0C8A00000, 0x55D0C8E00000), (0x7F1C44000000, 0x7F1C44600000)]
    assert all((end - start) % HUGE_PAGE == 0 and start % HUGE_PAGE == 0 for start, end in ranges)


def kernel_folds() -> bool:
    """Whether this kernel folds memory into huge pages on request (``MADV_COLLAPSE``, Linux 6.1+)."""
    probe = "from orchestrator_runtimes.hugepages import collapse_private_memory; b = b'x' * (8 << 20)\n"
    probe += "print(collapse_private_memory())"
    folded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return int(folded) > 0


def smaps_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in smaps_rollup")


def test_a_warm_fork_server_forks_from_huge_pages_and_its_runs_work(tmp_path: Path) -> None:
    pytest.importorskip("langgraph")
    if not sys.platform.startswith("linux") or not kernel_folds():
        pytest.skip("this kernel does not fold memory into huge pages on request (MADV_COLLAPSE)")
    with running_fork_server(tmp_path, "langgraph") as (server, path):
        # most of what the imports left in private memory is in huge pages (about 60 of 90 MB here)
        assert smaps_kib(server.pid, "AnonHugePages") * 3 > smaps_kib(server.pid, "Anonymous")
        job = {"framework": "langgraph", "spec": SPEC, "inputs": {}, "process": {"workdir": str(tmp_path)}}
        last = job_messages(path, job)[-1]
    assert last["result"]["outputs"]["output"] == 2, last
