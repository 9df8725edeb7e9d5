"""What a framework kernel starts with: the framework's names, ``model()``, ``record()`` and the magics.

The kernelspec loads this package as an IPython extension
(``--IPKernelApp.extensions=orchestrator_kernels``) with the framework in
``ORCHESTRATOR_KERNEL_FRAMEWORK``; ``%load_ext orchestrator_kernels`` in any
other kernel loads the magics and ``model()`` alone. A framework that is not
installed does not stop the kernel: its first cell says which extra to install.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from .frameworks import FRAMEWORK_ENV, FRAMEWORKS, QUIET_ENV


def namespace(framework: str | None) -> dict[str, Any]:
    """The names a notebook's first cell may use without importing them (ImportError when not installed)."""
    from orchestrator_runtimes.reporting import record

    from . import models

    chosen = FRAMEWORKS[framework] if framework else None

    def model(name: str | None = None, **options: Any) -> Any:
        """A chat model for this kernel's framework on your organization's model (see orchestrator_kernels.models)."""
        return models.model(name, framework=chosen.key if chosen else None, **options)

    names: dict[str, Any] = {}
    if chosen is not None:
        for variable, value in QUIET_ENV.items():
            os.environ.setdefault(variable, value)
        exec("\n".join(chosen.imports), names)  # noqa: S102  # nosec B102 - fixed import lines of FRAMEWORKS
        names.pop("__builtins__", None)
    names.update(model=model, record=record)
    return names


class _Notice:
    """Says once, in the first cell's output, why the framework's names are missing."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.shown = False

    def __call__(self, *_: Any) -> None:
        if not self.shown:
            self.shown = True
            print(self.text, file=sys.stderr)


def load(shell: Any) -> None:
    """Register the magics; in a framework kernel, put the framework's names and ``model()`` in the namespace."""
    from .magics import OrchestratorMagics

    shell.register_magics(OrchestratorMagics)
    key = os.environ.get(FRAMEWORK_ENV) or None
    framework = FRAMEWORKS.get(key) if key else None
    try:
        names = namespace(framework.key if framework else None)
    except ImportError as exc:
        if framework is None:  # only the framework's own imports can fail
            raise
        notice = _Notice(
            f"{framework.title} is not installed in this kernel's environment ({sys.executable}): "
            f"pip install '{framework.extra}' and restart the kernel ({exc})"
        )
        shell.events.register("pre_run_cell", notice)
        names = namespace(None)
    shell.push(names, interactive=False)
