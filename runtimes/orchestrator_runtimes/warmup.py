"""Warm-ups that run a tiny fixed workflow through a runtime, in a fork server's spare (see
:func:`orchestrator_runtimes.forkserver.warm`): the run that the spare then takes finds the framework's
first-call work done and the pages it writes to already its own (no copy-on-write faults)."""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .framework import FrameworkRuntime


def run_through(runtime: FrameworkRuntime, spec_data: dict[str, Any], inputs: Mapping[str, Any] | None = None) -> None:
    """Run ``spec_data`` through ``runtime`` once, in a throw-away folder, printing nothing, failing quietly (a
    warm-up that fails only leaves the run as cold as it was)."""
    from .runtime import RunContext
    from .spec import validate_spec

    spec, _ = validate_spec(spec_data, runtime.name)
    if spec is None:
        return
    workdir = Path(tempfile.mkdtemp(prefix="warm-up-"))
    sink = io.StringIO()
    context = RunContext(execution_id="warm-up", attempt=1, workdir=workdir)
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), contextlib.suppress(Exception):
            for _ in runtime.run(spec, dict(inputs or {}), context):
                pass
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
