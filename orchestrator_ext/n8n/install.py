"""Install a pinned n8n, and the Node it needs, from the npm registry into the Jupyter data dir.

n8n 2.x needs Node >= 24 (Debian ships 18): the npm package ``node`` carries a
Node binary, so the registry is the only network needed. A plain ``npm install
n8n`` fails offline (a Kafka client downloads from GitHub in its install
script), so the install resolves a lock file, installs with scripts off, and
rebuilds the one native module n8n needs (``sqlite3``).

Layout under :func:`n8n_home` (``$(jupyter --data-dir)/orchestrator/n8n``)::

    node/      the ``node`` package: node_modules/node/bin/node
    app/       n8n: package-lock.json, node_modules/n8n/bin/n8n
    installed.json   what was installed (the versions): written last, so its
                     presence means a complete install

Installing again with the same versions does nothing (cached).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess  # nosec B404 - runs npm with fixed arguments, no shell
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir

N8N_VERSION = "2.41.1"
NODE_VERSION = "24.21.0"
MARKER = "installed.json"


def n8n_home() -> Path:
    """Where n8n is installed: ``ORCHESTRATOR_N8N_HOME``, else ``<jupyter data dir>/orchestrator/n8n``."""
    configured = os.environ.get("ORCHESTRATOR_N8N_HOME")
    return Path(configured) if configured else Path(jupyter_data_dir()) / "orchestrator" / "n8n"


@dataclass(frozen=True)
class Installation:
    """An installed n8n: where its Node and its entry script are."""

    home: Path

    @property
    def node_bin(self) -> Path:
        return self.home / "node" / "node_modules" / "node" / "bin"

    @property
    def node(self) -> Path:
        return self.node_bin / "node"

    @property
    def n8n(self) -> Path:
        return self.home / "app" / "node_modules" / "n8n" / "bin" / "n8n"

    def versions(self) -> dict[str, str] | None:
        """The versions recorded by a complete install, or None."""
        try:
            data = json.loads((self.home / MARKER).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def ready(self) -> bool:
        """Whether the pinned versions are installed here, complete."""
        return self.versions() == {"n8n": N8N_VERSION, "node": NODE_VERSION} and self.n8n.is_file()


def installation(home: Path | None = None) -> Installation:
    return Installation(home or n8n_home())


def installed(home: Path | None = None) -> bool:
    return installation(home).ready()


class InstallError(RuntimeError):
    """A step of the install failed: which one, and the end of its output."""


Say = Callable[[str], None]


def _npm(args: list[str], cwd: Path, path: str, say: Say) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise InstallError("npm is not installed: it fetches Node 24 and n8n from the npm registry (apt install npm)")
    say(f"$ npm {' '.join(args)}")
    env = {**os.environ, "PATH": path, "npm_config_update_notifier": "false", "npm_config_fund": "false"}
    done = subprocess.run(  # noqa: S603  # nosec B603 - npm with our own arguments
        [npm, *args, "--no-audit", "--no-fund"], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise InstallError(f"npm {' '.join(args)} failed (status {done.returncode}):\n{tail}")


def _package(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text(json.dumps({"name": name, "private": True}) + "\n")


def install(home: Path | None = None, say: Say = print, *, force: bool = False) -> Installation:
    """Install the pinned Node and n8n under ``home`` (idempotent: a complete install is kept)."""
    target = installation(home)
    if target.ready() and not force:
        say(f"n8n {N8N_VERSION} (Node {NODE_VERSION}) is already installed in {target.home}")
        return target
    started = time.monotonic()
    (target.home / MARKER).unlink(missing_ok=True)
    base_path = os.environ.get("PATH", "")
    if not target.node.is_file() or force:
        _package(target.home / "node", "orchestrator-n8n-node")
        _npm(["install", f"node@{NODE_VERSION}"], target.home / "node", base_path, say)
    path = f"{target.node_bin}{os.pathsep}{base_path}"
    app = target.home / "app"
    if force and app.exists():
        shutil.rmtree(app)
    _package(app, "orchestrator-n8n")
    _npm(["install", f"n8n@{N8N_VERSION}", "--package-lock-only"], app, path, say)
    _npm(["ci", "--ignore-scripts"], app, path, say)
    _npm(["rebuild", "sqlite3"], app, path, say)
    if not target.n8n.is_file():
        raise InstallError(f"npm finished but {target.n8n} is missing")
    marker = {"n8n": N8N_VERSION, "node": NODE_VERSION}
    (target.home / MARKER).write_text(json.dumps(marker) + "\n")
    say(f"installed n8n {N8N_VERSION} (Node {NODE_VERSION}) in {target.home} in {time.monotonic() - started:.0f} s")
    return target
