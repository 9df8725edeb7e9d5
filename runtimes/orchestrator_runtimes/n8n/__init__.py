"""The n8n runtime: an agent's workflow is an n8n workflow, run on an n8n instance through its webhook.

The spec has one ``n8n_workflow`` node (:mod:`.spec`): the workflow n8n exports,
or the id of one on the instance. The instance is an integration of kind
``n8n`` (base URL and API key) the run receives: the one ``jupyter orchestrator
n8n serve`` registers, or an external one. :mod:`.run` puts the workflow on the
instance, calls it and maps n8n's execution into the run's steps, output and
error; :mod:`.watch` stops the n8n execution when the run is cancelled or
times out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from ..errors import ErrorKind, RunError
from ..framework import FrameworkRuntime, Problems
from .spec import N8nOptions, N8nWorkflowConfig

__all__ = ["N8nRuntime"]

#: a run without a timeout of its own waits this long for n8n's answer
DEFAULT_TIMEOUT = 3600
#: the watcher closes every file descriptor below this (the fork server's limit is 4096)
MAX_FD = 65536


class N8nRuntime(FrameworkRuntime):
    """Runs n8n workflows on an n8n instance (no Python framework: the instance is the framework)."""

    name = "n8n"
    title = "n8n"
    framework_module = "orchestrator_runtimes.n8n"
    extra = "n8n"
    capabilities: ClassVar[Mapping[str, bool]] = {
        "streaming": False,
        "checkpoints": False,
        "multi_agent": False,
        "tools": True,
        "human_in_the_loop": False,
        "multi_modal": False,
        "gpu": False,
    }
    options_model = N8nOptions
    node_models: ClassVar[Mapping[str, Any]] = {"n8n_workflow": N8nWorkflowConfig}
    ignored_types = frozenset({"input", "output"})
    spec_what = "the n8n workflow spec"
    #: what a run uses, imported by the warm runner before any run (urllib and its ssl cost ~60 ms per run)
    preloaded = (
        "orchestrator_runtimes.n8n.run",
        "orchestrator_runtimes.n8n.inline",
        "orchestrator_runtimes.n8n.watch",
        "orchestrator_runtimes.models",
    )

    def missing(self) -> str | None:
        return None  # nothing to import: the instance is reached over HTTP

    def graph_problems(self, spec: Any, options: Any) -> Problems:
        runnable = [i for i, node in enumerate(spec.nodes) if str(node.type) == "n8n_workflow"]
        if len(runnable) != 1:
            return [("nodes", f"an n8n agent's workflow has exactly one 'n8n_workflow' node, not {len(runnable)}")]
        return []

    def execute(self, spec: Any, options: Any, inputs: Mapping[str, Any], context: Any) -> Iterator[Any]:
        from .run import execute, instance_for

        node = next(node for node in spec.nodes if str(node.type) == "n8n_workflow")
        config = N8nWorkflowConfig.model_validate(node.config)
        api = instance_for(config, context.integrations)
        marker = f"{context.execution_id}:{context.attempt}"
        timeout = float(spec.timeout_seconds or DEFAULT_TIMEOUT)
        done = context.workdir / "n8n-run-ended"
        watcher: dict[str, Any] = {"base_url": api.base_url, "api_key": api.api_key, "marker": marker}
        watcher.update(done_file=str(done), deadline=timeout + 60)

        def started(workflow_id: str | None, hook: str) -> None:
            _start_watcher({**watcher, "workflow_id": workflow_id, "hook": hook})

        try:
            yield from execute(api, config, context, inputs, timeout, started)
        finally:
            done.touch()


def _start_watcher(job: dict[str, Any]) -> None:
    """The watcher that stops our n8n execution should this process be killed: a fork of this process (a new
    interpreter would cost ~0.3 s of CPU per run), in a session of its own, holding none of our files."""
    job["pid"] = os.getpid()
    try:
        middle = os.fork()
    except OSError as exc:
        raise RunError(ErrorKind.INTERNAL, f"could not start the n8n watcher: {exc}", retryable=True) from exc
    if middle:
        os.waitpid(middle, 0)  # the middle process exits at once: the watcher is nobody's zombie
        return
    status = 1
    try:
        os.setsid()
        if os.fork() == 0:
            _become_watcher()
            from .watch import watch

            status = watch(job)
        else:
            status = 0
    finally:
        os._exit(status)


def _become_watcher() -> None:
    """Let go of the run's files (its connection to the worker, its output pipe): the run's end is seen."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, MAX_FD)
