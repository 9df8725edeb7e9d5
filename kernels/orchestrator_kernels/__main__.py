"""``python -m orchestrator_kernels --framework=NAME -f CONNECTION_FILE``: start a framework kernel.

This environment's ipykernel with the ``orchestrator_kernels`` extension and
the framework named on the command line, so the same command serves the
kernelspecs and the workers, which start notebook runs from fixed commands
(``OrchestratorApp.run_kernels``), never from kernelspecs found on a path.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    """Start the kernel: ``--framework=NAME`` is ours, every other argument is ipykernel's."""
    from .frameworks import FRAMEWORK_ENV, QUIET_ENV

    rest: list[str] = []
    for argument in sys.argv[1:] if argv is None else argv:
        if argument.startswith("--framework="):
            os.environ[FRAMEWORK_ENV] = argument.partition("=")[2]
        else:
            rest.append(argument)
    for variable, value in QUIET_ENV.items():
        os.environ.setdefault(variable, value)
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=[*rest, "--IPKernelApp.extensions=orchestrator_kernels"])


if __name__ == "__main__":  # pragma: no cover - the kernel process itself
    # as ipykernel_launcher does: the notebook's folder must not shadow installed modules while we load
    if sys.path[0] == "" or Path(sys.path[0]) == Path.cwd():
        del sys.path[0]
    main()
