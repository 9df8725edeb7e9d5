"""What every run's child process gets: a scrubbed environment, its own directory, limits.

A run never inherits the worker's environment: only the variables in
:data:`PASSED_THROUGH` (locale, paths a kernel needs) cross, so no database
URL, encryption key or hub token reaches user code. Each run gets a fresh
working directory, and its process (and everything it starts) an address-space
limit set by ``setrlimit`` before ``exec``.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from orchestrator_runtimes.forkserver import apply_limits

#: the only variables of the worker's environment a run sees
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX")


def run_environment(workdir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a run started in ``workdir``: passed-through variables, a private HOME and tmp."""
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.update(
        HOME=str(workdir),
        TMPDIR=str(workdir / "tmp"),
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
        JUPYTER_PLATFORM_DIRS="1",
        MPLBACKEND="Agg",
        # frameworks must not phone home or wait on a network from inside a run
        CREWAI_DISABLE_TELEMETRY="true",
        CREWAI_TRACING_ENABLED="false",
        AGNO_TELEMETRY="false",
        LANGCHAIN_TRACING_V2="false",
        LANGSMITH_TRACING="false",
    )
    env.update(extra or {})
    return env


def new_workdir(root: Path | None, prefix: str) -> Path:
    """A fresh private directory for one run (mode 0700), with its own ``tmp``."""
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    (path / "tmp").mkdir()
    return path


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def limiter(memory_mib: int) -> Callable[[], None]:
    """A ``preexec_fn`` that caps the child's address space (0: no cap) and open files."""

    return functools.partial(apply_limits, memory_mib)  # the same limits as a forked run's


PR_GET_DUMPABLE, PR_SET_DUMPABLE = 3, 4


def protect_worker_process() -> bool:
    """Make this process non-dumpable: processes of the same user (the runs) cannot read its memory or
    ``/proc/<pid>/environ``, where the database URL and the keys are. True when it took (Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        return False
    return int(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)) == 0
