"""Code-first deploys: the graph, crew or team a cell builds becomes a workflow's ``options.callable``.

A workflow version stores a spec, not code; a code-first spec names a
``module:function`` under the server's files that builds the framework object
(``runtimes/orchestrator_runtimes/code.py``). So ``%%orchestrator deploy``
writes the cell into a module of its own under the server's root directory,
``orchestrator_code/<agent>_<hash of the code>.py``: a version always names the
code it was deployed with (a new cell is a new file, never an edited one), and
the runtime calls its ``build(...)``, which runs the cell with the kernel's
start-up names and returns the object again, with ``model()`` giving the run's
own (metered) model.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .startup import namespace

FOLDER = "orchestrator_code"
FILES_ROOT_ENV = "ORCHESTRATOR_FILES_ROOT"
_MAGIC = re.compile(r"^\s*[%!]")

MODULE_TEMPLATE = '''"""{title}

Written by %%orchestrator deploy: workflow versions name this file by the hash of its code.
Do not edit it; change the cell and deploy again (that writes a new file and a new version).
"""

from orchestrator_kernels.code import build_cell

FRAMEWORK = {framework!r}
NAME = {name!r}
SOURCE = {source!r}


def build(**handed):
    """The {framework} object the cell builds, with model() giving the run's model."""
    return build_cell(SOURCE, NAME, FRAMEWORK, handed)
'''


@dataclass(frozen=True)
class Built:
    """The framework object a cell built: which framework, and the variable holding it."""

    framework: str
    name: str


def cell_code(cell: str) -> str:
    """The cell without its magics and shell lines (what a module can run)."""
    return "\n".join(line for line in cell.splitlines() if not _MAGIC.match(line))


def assigned_names(source: str) -> list[str]:
    """Names the cell assigns at its top level, in order (the candidates for what it builds)."""
    names: list[str] = []
    for node in ast.parse(source).body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        names.extend(t.id for t in targets if isinstance(t, ast.Name))
    return names


def framework_of(value: Any) -> tuple[str, int] | None:
    """(framework, preference) of a graph, crew, team or agent; None for anything else.

    An uncompiled ``StateGraph`` is preferred to a compiled one (the runtime compiles it with its
    checkpointer, so runs can wait and resume), a Team to an Agent (the team holds its agents).
    """
    kinds = [
        ("langgraph.graph.state", "StateGraph", "langgraph", 2),
        ("langgraph.pregel", "Pregel", "langgraph", 1),
        ("crewai", "Crew", "crewai", 2),
        ("agno.team", "Team", "agno", 2),
        ("agno.agent", "Agent", "agno", 1),
    ]
    import sys

    for module, cls, framework, preference in kinds:
        loaded = sys.modules.get(module)
        kind = getattr(loaded, cls, None) if loaded is not None else None
        if isinstance(kind, type) and isinstance(value, kind):
            return framework, preference
    return None


def find_built(source: str, user_ns: dict[str, Any], name: str | None = None) -> Built:
    """What the cell built: the variable ``name``, else the best framework object it assigned."""
    if name is not None:
        found = framework_of(user_ns.get(name))
        if found is None:
            raise ValueError(f"'{name}' is not a LangGraph graph, a CrewAI crew or an Agno agent or team")
        return Built(found[0], name)
    best: tuple[int, int, Built] | None = None
    for order, candidate in enumerate(assigned_names(source)):
        found = framework_of(user_ns.get(candidate))
        if found is not None and (best is None or (found[1], order) >= best[:2]):
            best = (found[1], order, Built(found[0], candidate))
    if best is None:
        raise ValueError(
            "the cell assigns no graph, crew, team or agent: end it with e.g. `graph = StateGraph(...)`, "
            "`crew = Crew(...)` or `team = Team(...)` (or name one with --name)"
        )
    return best[2]


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return slug[:40] or "agent"


def write_module(files_root: Path, agent: str, built: Built, source: str, origin: str) -> str:
    """Write the cell's module under ``files_root``; the ``module:function`` reference for the spec."""
    digest = hashlib.sha256(f"{built.framework}\n{built.name}\n{source}".encode()).hexdigest()[:12]
    module = f"agent_{_slug(agent)}_{digest}"
    folder = files_root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    title = f"Agent '{agent}' ({built.framework}), deployed from {origin}."
    text = MODULE_TEMPLATE.format(title=title, framework=built.framework, name=built.name, source=source)
    target = folder / f"{module}.py"
    if not target.exists():
        partial = target.with_suffix(".tmp")
        partial.write_text(text)
        partial.replace(target)
    return f"{FOLDER}.{module}:build"


def build_cell(source: str, name: str, framework: str, handed: dict[str, Any]) -> Any:
    """Run a deployed cell (in a run's process) and return what it builds; ``model()`` gives what was handed."""
    from . import models

    models.hand_over(handed)
    names = namespace(framework)
    exec(compile(source, f"<deployed {framework} cell>", "exec"), names)  # noqa: S102  # nosec B102 - the user's own code, in the user's own run
    if name not in names:
        raise NameError(f"the deployed cell no longer defines '{name}'")
    return names[name]


def files_root(environ: dict[str, str] | None = None) -> Path:
    """The server's root directory, where the workers find code-first modules (the server running this kernel)."""
    env = os.environ if environ is None else environ
    if env.get(FILES_ROOT_ENV):
        return Path(env[FILES_ROOT_ENV])
    from orchestrator_ext.client import running_servers  # not jupyter_server.serverapp: seconds to import

    servers = running_servers(env.get("JUPYTER_RUNTIME_DIR"))
    mine = [s for s in servers if s.get("pid") == os.getppid()] or (servers if len(servers) == 1 else [])
    if mine and mine[0].get("root_dir"):
        return Path(str(mine[0]["root_dir"]))
    raise LookupError(
        f"cannot tell which server's files the workers read: set {FILES_ROOT_ENV} to the server's root directory"
    )
