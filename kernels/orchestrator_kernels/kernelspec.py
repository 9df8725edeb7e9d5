"""Kernelspecs of the framework kernels, and ``jupyter orchestrator kernels install``.

Each kernel is this environment's ipykernel started by ``python -m
orchestrator_kernels --framework=NAME`` (:mod:`.__main__`), which loads the
``orchestrator_kernels`` extension: it imports the framework, registers the
magics and puts ``model()`` at hand. Workers start notebook runs from the
same commands (:func:`run_commands`), not from kernelspecs.

The same ``kernel.json`` files ship in the wheel as shared data
(``share/jupyter/kernels/``, like the server extension's config under
``etc/jupyter``), so ``pip install`` makes them visible to every Jupyter of the
environment; ``jupyter orchestrator kernels install`` writes them again, for
the frameworks actually installed, wherever you choose (``--user``,
``--sys-prefix``, ``--prefix``).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_core.application import JupyterApp
from traitlets import Bool, Unicode

from .frameworks import FRAMEWORKS, QUIET_ENV, Framework, framework_named

#: the kernelspecs as shipped in the wheel (hatch shared-data maps this folder to share/jupyter/kernels)
SHARED_KERNELS = Path(__file__).resolve().parent.parent / "share" / "jupyter" / "kernels"


def run_command(framework: Framework, python: str = "python") -> list[str]:
    """The command that starts ``framework``'s kernel (``{connection_file}`` filled in by jupyter_client)."""
    return [python, "-m", "orchestrator_kernels", f"--framework={framework.key}", "-f", "{connection_file}"]


def run_commands() -> dict[str, list[str]]:
    """The installed frameworks' kernels as a worker starts them: its own interpreter, fixed commands."""
    return {f.kernel_name: run_command(f, sys.executable) for f in FRAMEWORKS.values() if f.installed()}


def kernel_json(framework: Framework) -> dict[str, Any]:
    """The ``kernel.json`` of ``framework``'s kernel (``python`` is replaced by the launcher's interpreter)."""
    return {
        "argv": run_command(framework),
        "display_name": framework.display_name,
        "language": "python",
        "interrupt_mode": "signal",
        "env": dict(QUIET_ENV),
        "metadata": {"debugger": True, "orchestrator": {"framework": framework.key, "extra": framework.extra}},
    }


def write_spec(framework: Framework, folder: Path) -> Path:
    """Write ``framework``'s kernelspec folder under ``folder``; its path."""
    target = folder / framework.kernel_name
    target.mkdir(parents=True, exist_ok=True)
    (target / "kernel.json").write_text(json.dumps(kernel_json(framework), indent=1, ensure_ascii=False) + "\n")
    return target


def install(
    frameworks: list[str] | None = None, *, user: bool = False, prefix: str | None = None, every: bool = False
) -> tuple[list[str], list[Framework]]:
    """Install the kernels of ``frameworks`` (default: all); those not installed are skipped unless ``every``.

    Returns the folders written and the frameworks skipped. ``prefix`` is e.g. ``sys.prefix``;
    neither it nor ``user``: the system-wide Jupyter data folder.
    """
    chosen = [framework_named(key) for key in frameworks] if frameworks else list(FRAMEWORKS.values())
    written: list[str] = []
    skipped: list[Framework] = []
    manager = KernelSpecManager()
    with tempfile.TemporaryDirectory(prefix="orchestrator-kernels-") as scratch:
        for framework in chosen:
            if not every and not framework.installed():
                skipped.append(framework)
                continue
            source = write_spec(framework, Path(scratch))
            written.append(manager.install_kernel_spec(str(source), framework.kernel_name, user=user, prefix=prefix))
    return written, skipped


class KernelsInstallCommand(JupyterApp):
    """``jupyter orchestrator kernels install``: one kernel per installed framework."""

    name = "jupyter-orchestrator-kernels-install"
    description = (
        "Install the framework kernels (Orchestrator · LangGraph, · CrewAI, · Agno) of the installed frameworks."
    )
    user = Bool(False, help="Install for the current user (~/.local/share/jupyter/kernels).").tag(config=True)
    sys_prefix = Bool(False, help="Install into this environment (sys.prefix/share/jupyter/kernels).").tag(config=True)
    prefix = Unicode("", help="Install under this prefix (PREFIX/share/jupyter/kernels).").tag(config=True)
    every = Bool(False, help="Also install kernels whose framework is not installed (they say what to install).").tag(
        config=True
    )
    flags = {  # noqa: RUF012
        "user": ({"KernelsInstallCommand": {"user": True}}, "Install for the current user."),
        "sys-prefix": ({"KernelsInstallCommand": {"sys_prefix": True}}, "Install into sys.prefix."),
        "all": ({"KernelsInstallCommand": {"every": True}}, "Install every framework's kernel."),
    }
    aliases = {"prefix": "KernelsInstallCommand.prefix"}  # noqa: RUF012

    def start(self) -> None:
        chosen = [str(name) for name in self.extra_args] or None
        if sum((self.user, self.sys_prefix, bool(self.prefix))) > 1:
            self.exit("give at most one of --user, --sys-prefix and --prefix")
        prefix = sys.prefix if self.sys_prefix else (self.prefix or None)
        try:
            written, skipped = install(chosen, user=self.user, prefix=prefix, every=self.every)
        except ValueError as exc:
            self.exit(str(exc))
        for folder in written:
            print(f"installed {Path(folder).name} in {folder}")
        for framework in skipped:
            print(
                f"skipped {framework.kernel_name}: {framework.title} is not installed (pip install '{framework.extra}')"
            )


class KernelsCommand(JupyterApp):
    """``jupyter orchestrator kernels``: the framework kernels."""

    name = "jupyter-orchestrator-kernels"
    description = "The framework kernels: `jupyter orchestrator kernels install [--user|--sys-prefix|--prefix=P]`."
    subcommands = {"install": (KernelsInstallCommand, KernelsInstallCommand.description)}  # noqa: RUF012

    def start(self) -> None:
        if self.subapp is not None:
            self.subapp.start()
            return
        print(self.description, file=sys.stderr)
        for framework in FRAMEWORKS.values():
            state = "installed" if framework.installed() else f"not installed (pip install '{framework.extra}')"
            print(f"  {framework.kernel_name:24} {framework.display_name}: {framework.title} {state}", file=sys.stderr)
        self.exit(2)
