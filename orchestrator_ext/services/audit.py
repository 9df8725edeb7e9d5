"""The audit trail: one row per change, written in the change's own transaction."""

from __future__ import annotations

import uuid
from typing import Any

from ..db.models import AuditEvent
from .scope import Scope


def record(
    scope: Scope,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | str | None,
    org_id: uuid.UUID | None,
    **details: Any,
) -> None:
    """Add an audit event to the scope's transaction. ``details`` must hold no secrets or PII."""
    scope.session.add(
        AuditEvent(
            org_id=org_id,
            actor_user_id=scope.actor.user_id,
            action=action,
            resource_type=resource_type,
            resource_id=str(resource_id) if resource_id is not None else None,
            details=details,
        )
    )
