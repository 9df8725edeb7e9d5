"""The Python environment users' servers and the hub's services run from, in the team-mode tests.

Users' accounts cannot run the test runner's Python when it lives under a
private folder (pyenv's under /root), so, as docs/deploy/team.md tells an
operator to do, the project is installed from a built wheel (not editable)
into a venv made with Debian's /usr/bin/python3 in a folder every account can
read. The venv is kept under /var/tmp, keyed by the wheel's content and the
versions installed beside it, so a second run with the same code reuses it.
Test runs at the same time (two checkouts) take turns building (a lock file)
and keep each other's environments: only those unused for 30 minutes are removed.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from importlib import metadata
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
ROOT = Path("/var/tmp/orchestrator-hub-env")
SYSTEM_PYTHON = Path("/usr/bin/python3")
#: environments (~0.5 GB each) not used for this long are removed
STALE_AFTER_S = 30 * 60
#: installed beside the wheel at the versions the test runner has (no new downloads when cached); LangGraph
#: and Agno: the run-isolation tests start framework runs in the team mode (test_run_isolation.py)
COMPANIONS = (
    "jupyterhub",
    "voila",
    "ipywidgets",
    "langgraph",
    "langgraph-checkpoint-postgres",
    "agno",
    "openai",
    "pgvector",
)


def _wheel(out: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(REPOSITORY)],
        check=True,
        capture_output=True,
    )
    return next(out.glob("orchestrator-*.whl"))


def _content_key(wheel: Path, requirements: list[str]) -> str:
    digest = hashlib.sha256("\n".join(requirements).encode())
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            digest.update(name.encode())
            digest.update(archive.read(name))
    return digest.hexdigest()[:16]


def ensure_env() -> Path:
    """The prefix of a ready environment (its bin/ has jupyterhub-singleuser and jupyter-orchestrator)."""
    requirements = [f"{name}=={metadata.version(name)}" for name in COMPANIONS]
    with tempfile.TemporaryDirectory(prefix="orch-wheel-") as out:
        wheel = _wheel(Path(out))
        key = _content_key(wheel, requirements)
        prefix = ROOT / key
        ROOT.mkdir(parents=True, exist_ok=True)
        ROOT.chmod(0o755)
        with (ROOT / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be building this very environment
            if not (prefix / ".complete").exists():
                _remove_stale()
                _build(prefix, wheel, requirements)
        (prefix / ".complete").touch()  # its time says when it was last used
        return prefix


def _remove_stale() -> None:
    for old in ROOT.iterdir():
        marker = old / ".complete"
        if old.is_dir() and (not marker.exists() or time.time() - marker.stat().st_mtime > STALE_AFTER_S):
            shutil.rmtree(old, ignore_errors=True)


def _build(prefix: Path, wheel: Path, requirements: list[str]) -> None:
    shutil.rmtree(prefix, ignore_errors=True)  # a build that was interrupted
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(prefix)], check=True, capture_output=True)
    result = subprocess.run(
        [str(prefix / "bin" / "pip"), "install", "--quiet", str(wheel), *requirements],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        shutil.rmtree(prefix, ignore_errors=True)
        raise RuntimeError(f"installing the users' environment failed:\n{result.stdout}\n{result.stderr}")
    for path in [prefix, *prefix.rglob("*")]:  # readable by every account, whatever the umask
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    (prefix / ".complete").touch()


#: the npm configurable-http-proxy: the PyPI one has no TLS (--ssl-* "not supported yet")
NPM_PROXY = "configurable-http-proxy@5.3.0"
NPM_PROXY_ROOT = Path("/var/tmp/orchestrator-hub-proxy")


def ensure_npm_proxy() -> Path | None:
    """The npm configurable-http-proxy's command (installed once under /var/tmp); None without npm."""
    npm = shutil.which("npm")
    if npm is None:
        return None
    command = NPM_PROXY_ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
    if not command.exists():
        subprocess.run(
            [npm, "install", "--prefix", str(NPM_PROXY_ROOT), "--no-audit", "--no-fund", NPM_PROXY],
            check=True,
            capture_output=True,
        )
    return command
