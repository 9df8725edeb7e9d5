"""Workflows: specs saved as immutable, numbered versions under an agent.

Creating a workflow saves version 1; every update saves version n+1 (a
version row is never changed: a database trigger refuses it). Updates lock
the workflow row, so concurrent editors get consecutive numbers, and an
``If-Match`` naming a version that is no longer current is a conflict.

A notebook named by path is read from under the server's root directory and
its JSON kept with the version (``notebook_snapshot``), so a version always
runs the notebook it was saved with.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator_runtimes import ParametersCellError, notebook_problems, parse_parameters, validate_spec
from sqlalchemy import Select, select, tuple_

from ..db.models import Agent, Workflow, WorkflowVersion
from ..errors import Conflict, FieldError, NotFound, ValidationFailed
from ..schemas.common import VERSION_CURSOR_PATTERN
from ..schemas.workflows import (
    CreateWorkflow,
    DescribeParameter,
    DescribeWorkflow,
    DescribeWorkflowVersion,
    ListWorkflowsQuery,
    ListWorkflowsResponse,
    ListWorkflowVersionsQuery,
    ListWorkflowVersionsResponse,
    UpdateWorkflow,
    storable,
)
from ..security.permissions import Permission
from . import audit
from .agents import load_agent
from .pagination import page_of, paginate
from .scope import Identity, Scope, ScopeFactory
from .settings import ServiceSettings

#: the largest notebook file a version snapshots
MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
PATH_FIELD = "spec.notebook.path"


async def load_workflow(
    scope: Scope, workflow_id: uuid.UUID, permission: Permission, *, lock: bool = False
) -> Workflow:
    """A live workflow the caller may act on with ``permission``; 404 when invisible or deleted."""
    stmt = select(Workflow).where(Workflow.id == workflow_id, Workflow.deleted_at.is_(None))
    if lock:
        stmt = stmt.with_for_update()
    workflow = (await scope.session.execute(stmt)).scalar_one_or_none()
    if workflow is None:
        raise NotFound(f"No workflow with id '{workflow_id}'.")
    scope.actor.require(workflow.org_id, permission, what="workflow", resource_id=workflow_id)
    return workflow


async def load_runnable_workflow(scope: Scope, workflow_id: uuid.UUID, permission: Permission) -> Workflow:
    """A live workflow whose agent is live too (what may be executed or scheduled); 404 otherwise."""
    workflow = await load_workflow(scope, workflow_id, permission)
    stmt = select(Agent.id).where(Agent.id == workflow.agent_id, Agent.deleted_at.is_(None))
    if (await scope.session.execute(stmt)).first() is None:
        raise NotFound(f"No workflow with id '{workflow_id}' (its agent was deleted).")
    return workflow


async def load_version(scope: Scope, workflow_id: uuid.UUID, number: int) -> WorkflowVersion | None:
    stmt = select(WorkflowVersion).where(WorkflowVersion.workflow_id == workflow_id, WorkflowVersion.version == number)
    return (await scope.session.execute(stmt)).scalar_one_or_none()


def is_notebook_spec(spec: dict[str, Any]) -> bool:
    return isinstance(spec.get("notebook"), dict)


def version_parameters(version: WorkflowVersion) -> list[DescribeParameter]:
    """The parameters of a notebook version (from its content or its snapshot); none for graphs."""
    source = version.spec.get("notebook")
    if not isinstance(source, dict):
        return []
    notebook = source.get("content") or version.notebook_snapshot
    if not isinstance(notebook, dict):
        return []
    try:
        return [DescribeParameter.model_validate(p) for p in parse_parameters(notebook)]
    except ParametersCellError:  # pragma: no cover - refused when the version was saved
        return []


def describe_workflow(workflow: Workflow, version: WorkflowVersion) -> DescribeWorkflow:
    return DescribeWorkflow(
        id=workflow.id,
        agent_id=workflow.agent_id,
        org_id=workflow.org_id,
        name=workflow.name,
        version=version.version,
        spec=version.spec,
        parameters=version_parameters(version),
        created_at=workflow.created_at,
        updated_at=workflow.updated_at,
    )


def describe_version(version: WorkflowVersion) -> DescribeWorkflowVersion:
    return DescribeWorkflowVersion(
        workflow_id=version.workflow_id,
        version=version.version,
        spec=version.spec,
        parameters=version_parameters(version),
        comment=version.comment,
        created_by=version.created_by,
        created_at=version.created_at,
    )


def _path_error(message: str) -> ValidationFailed:
    return ValidationFailed("The workflow spec is invalid.", errors=[FieldError(PATH_FIELD, message, "notebook_path")])


def read_notebook(root_dir: Path, path: str) -> dict[str, Any]:
    """The JSON of the notebook at ``path`` under ``root_dir`` (never outside it), checked."""
    try:
        root = root_dir.resolve()
        target = (root / path).resolve()
        if not target.is_relative_to(root):
            raise _path_error("the path leads outside the server's root directory")
        if not target.is_file():
            raise _path_error(f"no notebook at '{path}' under the server's root directory")
        if target.stat().st_size > MAX_NOTEBOOK_BYTES:
            raise _path_error(f"the notebook is larger than {MAX_NOTEBOOK_BYTES // (1024 * 1024)} MiB")
        raw = target.read_bytes()
    except OSError as exc:
        raise _path_error(f"the notebook cannot be read ({exc.strerror or type(exc).__name__})") from exc
    try:
        notebook = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise _path_error("the file is not a JSON notebook") from exc
    if not isinstance(notebook, dict):
        raise _path_error("the file is not a JSON notebook")
    try:
        storable(notebook)
    except ValueError as exc:
        raise _path_error(f"the notebook cannot be stored: {exc}") from exc
    problems = notebook_problems(notebook)
    if problems:
        raise _path_error("the notebook is invalid: " + "; ".join(problems))
    return notebook


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class WorkflowService:
    def __init__(self, scopes: ScopeFactory, settings: ServiceSettings) -> None:
        self.scopes = scopes
        self.settings = settings

    async def create(self, identity: Identity, agent_id: uuid.UUID, body: CreateWorkflow) -> DescribeWorkflow:
        async with self.scopes.enter(identity) as scope:
            agent = await load_agent(scope, agent_id, Permission.WORKFLOWS_WRITE)
            spec, snapshot = await self._prepare(body.spec, agent.framework)
            workflow = Workflow(
                id=uuid.uuid4(),
                org_id=agent.org_id,
                agent_id=agent.id,
                name=body.name,
                current_version=1,
                created_by=scope.actor.user_id,
            )
            scope.session.add(workflow)
            await scope.session.flush()
            version = await self._add_version(scope, workflow, 1, spec, snapshot, body.comment)
            await scope.session.refresh(workflow)
            audit.record(scope, "workflow.create", "workflow", workflow.id, workflow.org_id, version=1)
            return describe_workflow(workflow, version)

    async def list(self, identity: Identity, agent_id: uuid.UUID, query: ListWorkflowsQuery) -> ListWorkflowsResponse:
        async with self.scopes.enter(identity) as scope:
            agent = await load_agent(scope, agent_id, Permission.WORKFLOWS_READ)
            stmt = select(Workflow).where(Workflow.agent_id == agent.id, Workflow.deleted_at.is_(None))
            page = paginate(stmt, Workflow.created_at, Workflow.id, query.limit, query.cursor)
            rows = (await scope.session.execute(page)).scalars().all()
            workflows, next_cursor = page_of(rows, query.limit)
            versions = await self._current_versions(scope, workflows)
            items = [describe_workflow(w, versions[w.id]) for w in workflows]
            return ListWorkflowsResponse(items=items, next_cursor=next_cursor)

    async def get(self, identity: Identity, workflow_id: uuid.UUID) -> DescribeWorkflow:
        async with self.scopes.enter(identity) as scope:
            workflow = await load_workflow(scope, workflow_id, Permission.WORKFLOWS_READ)
            version = await load_version(scope, workflow.id, workflow.current_version)
            if version is None:  # pragma: no cover - written in the same transaction as the workflow
                raise NotFound(f"No workflow with id '{workflow_id}'.")
            return describe_workflow(workflow, version)

    async def update(
        self, identity: Identity, workflow_id: uuid.UUID, body: UpdateWorkflow, if_match: frozenset[int] | None
    ) -> DescribeWorkflow:
        """Save version n+1; ``if_match``: the versions the caller edited (409 when none is current)."""
        async with self.scopes.enter(identity) as scope:
            workflow = await load_workflow(scope, workflow_id, Permission.WORKFLOWS_WRITE, lock=True)
            current = workflow.current_version
            if if_match is not None and current not in if_match:
                edited = ", ".join(str(n) for n in sorted(if_match))
                raise Conflict(
                    f"The workflow is at version {current}, not {edited}: reload it, reapply your change, and retry.",
                    current_version=current,
                )
            framework = (
                await scope.session.execute(select(Agent.framework).where(Agent.id == workflow.agent_id))
            ).scalar_one()
            spec, snapshot = await self._prepare(body.spec, framework)
            workflow.current_version = current + 1
            workflow.updated_at = datetime.now(UTC)
            if body.name is not None:
                workflow.name = body.name
            version = await self._add_version(scope, workflow, current + 1, spec, snapshot, body.comment)
            audit.record(scope, "workflow.update", "workflow", workflow.id, workflow.org_id, version=current + 1)
            return describe_workflow(workflow, version)

    async def versions(
        self, identity: Identity, workflow_id: uuid.UUID, query: ListWorkflowVersionsQuery
    ) -> ListWorkflowVersionsResponse:
        async with self.scopes.enter(identity) as scope:
            workflow = await load_workflow(scope, workflow_id, Permission.WORKFLOWS_READ)
            stmt = select(WorkflowVersion).where(WorkflowVersion.workflow_id == workflow.id)
            rows = (await scope.session.execute(_version_page(stmt, query.limit, query.cursor))).scalars().all()
            page = list(rows[: query.limit])
            next_cursor = _version_cursor(page[-1].version) if len(rows) > query.limit and page else None
            return ListWorkflowVersionsResponse(items=[describe_version(v) for v in page], next_cursor=next_cursor)

    async def version(self, identity: Identity, workflow_id: uuid.UUID, number: int) -> DescribeWorkflowVersion:
        async with self.scopes.enter(identity) as scope:
            workflow = await load_workflow(scope, workflow_id, Permission.WORKFLOWS_READ)
            version = await load_version(scope, workflow.id, number)
            if version is None:
                raise NotFound(
                    f"The workflow has no version {number} (its current version is {workflow.current_version})."
                )
            return describe_version(version)

    # ---- helpers ---------------------------------------------------------------

    async def _prepare(self, data: dict[str, Any], framework: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The validated spec as stored, and the snapshot of the notebook it names by path."""
        spec, problems = validate_spec(data, framework)
        if spec is None:
            errors = [FieldError(p.field, p.message, "spec_invalid") for p in problems]
            raise ValidationFailed("The workflow spec is invalid.", errors=errors)
        snapshot = None
        if spec.notebook is not None and spec.notebook.path is not None:
            snapshot = await asyncio.to_thread(read_notebook, self.settings.root_dir, spec.notebook.path)
        return spec.model_dump(mode="json"), snapshot

    async def _add_version(
        self,
        scope: Scope,
        workflow: Workflow,
        number: int,
        spec: dict[str, Any],
        snapshot: dict[str, Any] | None,
        comment: str,
    ) -> WorkflowVersion:
        version = WorkflowVersion(
            id=uuid.uuid4(),
            org_id=workflow.org_id,
            workflow_id=workflow.id,
            version=number,
            spec=spec,
            notebook_snapshot=snapshot,
            comment=comment,
            created_by=scope.actor.user_id,
        )
        scope.session.add(version)
        await scope.session.flush()
        await scope.session.refresh(version)
        return version

    async def _current_versions(self, scope: Scope, workflows: Iterable[Workflow]) -> dict[uuid.UUID, WorkflowVersion]:
        keys = [(w.id, w.current_version) for w in workflows]
        if not keys:
            return {}
        stmt = select(WorkflowVersion).where(tuple_(WorkflowVersion.workflow_id, WorkflowVersion.version).in_(keys))
        return {v.workflow_id: v for v in (await scope.session.execute(stmt)).scalars()}


# ---- pages of versions: keyset on the version number, newest first ----------


_VERSION_CURSOR = re.compile(VERSION_CURSOR_PATTERN[1:-1])


def _version_cursor(number: int) -> str:
    return str(number)


def _version_page(stmt: Select[Any], limit: int, cursor: str | None) -> Select[Any]:
    if cursor is not None:
        stmt = stmt.where(WorkflowVersion.version < _decode_version_cursor(cursor))
    return stmt.order_by(WorkflowVersion.version.desc()).limit(limit + 1)


def _decode_version_cursor(cursor: str) -> int:
    if _VERSION_CURSOR.fullmatch(cursor):
        return int(cursor)
    raise ValidationFailed(
        "The cursor is not one this API returned.",
        errors=[FieldError("cursor", "invalid cursor: pass the next_cursor of a previous page", "cursor_invalid")],
    )
