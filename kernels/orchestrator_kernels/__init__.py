"""Orchestrator's framework kernels and the ``%orchestrator`` IPython magics.

- ``Orchestrator · LangGraph``, ``· CrewAI``, ``· Agno``: kernels that start
  with their framework imported, the magics loaded and ``model()`` at hand
  (:mod:`.kernelspec`, :mod:`.startup`, :mod:`.models`);
- ``%load_ext orchestrator_kernels`` in any IPython kernel: the magics
  (``%orchestrator deploy``, ``%%orchestrator deploy``, ``%orchestrator run``,
  ``runs``, ``schedules``; :mod:`.magics`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "model"]


def load_ipython_extension(shell: Any) -> None:
    """IPython's entry point for ``%load_ext orchestrator_kernels`` and the kernels' start-up."""
    from .startup import load

    load(shell)


def model(name: str | None = None, *, framework: str | None = None, **options: Any) -> Any:
    """A chat model for ``framework`` (default: this kernel's) on your organization's model."""
    from .models import model as make

    return make(name, framework=framework, **options)
