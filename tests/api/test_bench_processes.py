"""A benchmark killed outright takes the processes it started with it (``bench/harness.py``).

They run in sessions of their own (Ctrl-C reaches only the benchmark, which
stops them in order), so nothing else stops them when the benchmark itself is
killed: each gets its stop signal when its parent dies, and a server stops the
embedded PostgreSQL it started on it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: a process that writes which signal stopped it (whole, by a rename: the test reads it once it exists)
CHILD = (
    "import os, signal, sys, time\n"
    "def stopped(signum, frame):\n"
    "    open(sys.argv[1] + '.part', 'w').write(str(signum))\n"
    "    os.replace(sys.argv[1] + '.part', sys.argv[1]); sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, stopped)\n"
    "print('ready', flush=True)\n"
    "time.sleep(600)\n"
)
#: a benchmark that starts one process through the harness, then waits to be killed
BENCHMARK = (
    "import os, sys, time\nfrom pathlib import Path\n"
    f"sys.path.insert(0, {str(ROOT / 'bench')!r})\n"
    "import harness\n"
    "root = Path(sys.argv[1])\n"
    "processes = harness.Processes(env=dict(os.environ), root=root)\n"
    "started = processes.start('child', [sys.executable, '-c', sys.argv[2], str(root / 'signal')])\n"
    "print(started.process.pid, flush=True)\n"
    "time.sleep(600)\n"
)


def test_a_killed_benchmark_stops_what_it_started(tmp_path: Path) -> None:
    bench = subprocess.Popen(
        [sys.executable, "-c", BENCHMARK, str(tmp_path), CHILD], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert bench.stdout is not None
    child = int(bench.stdout.readline())
    log = tmp_path / "child.log"
    deadline = time.monotonic() + 60
    while "ready" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    bench.kill()
    bench.wait()
    try:
        while not (tmp_path / "signal").exists():
            assert time.monotonic() < deadline, "the benchmark's child outlived it"
            time.sleep(0.05)
        assert int((tmp_path / "signal").read_text()) == signal.SIGTERM  # its stop signal: it may clean up
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
