"""Roles and permissions as data: one table, read by every service check.

Like JupyterHub's ``scopes.py``, each permission is a row with its
description; ``ROLE_PERMISSIONS`` maps each organization role to what it may do.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    DEVELOPER = "developer"
    VIEWER = "viewer"


class Permission(StrEnum):
    ORG_READ = "org:read"
    ORG_UPDATE = "org:update"
    ORG_CHANGE_TIER = "org:change_tier"
    MEMBERS_READ = "members:read"
    MEMBERS_MANAGE = "members:manage"
    MEMBERS_MANAGE_OWNERS = "members:manage_owners"
    AGENTS_READ = "agents:read"
    AGENTS_WRITE = "agents:write"
    AGENTS_DELETE = "agents:delete"
    WORKFLOWS_READ = "workflows:read"
    WORKFLOWS_WRITE = "workflows:write"
    EXECUTIONS_READ = "executions:read"
    EXECUTIONS_CREATE = "executions:create"
    EXECUTIONS_CANCEL = "executions:cancel"
    SCHEDULES_READ = "schedules:read"
    SCHEDULES_MANAGE = "schedules:manage"
    INTEGRATIONS_READ = "integrations:read"
    INTEGRATIONS_MANAGE = "integrations:manage"
    AUDIT_READ = "audit:read"
    USAGE_READ = "usage:read"


#: what the ``/admin`` endpoints need: not an organization role but a platform admin
#: (a JupyterHub admin, a personal server's owner, or a name in OrchestratorApp.platform_admins)
PLATFORM_ADMIN = "platform:admin"

PERMISSION_DESCRIPTIONS: dict[Permission, str] = {
    Permission.ORG_READ: "See the organization, its tier and limits.",
    Permission.ORG_UPDATE: "Rename the organization.",
    Permission.ORG_CHANGE_TIER: "Move the organization to another resource tier.",
    Permission.MEMBERS_READ: "List the members and their roles.",
    Permission.MEMBERS_MANAGE: "Add, remove and change the role of admins, developers and viewers.",
    Permission.MEMBERS_MANAGE_OWNERS: "Add, remove and change the role of owners.",
    Permission.AGENTS_READ: "List and read agents.",
    Permission.AGENTS_WRITE: "Create and update agents.",
    Permission.AGENTS_DELETE: "Delete (archive) agents.",
    Permission.WORKFLOWS_READ: "Read workflows and their versions.",
    Permission.WORKFLOWS_WRITE: "Create workflows and new workflow versions.",
    Permission.EXECUTIONS_READ: "List and read executions.",
    Permission.EXECUTIONS_CREATE: "Start executions.",
    Permission.EXECUTIONS_CANCEL: "Cancel queued and running executions.",
    Permission.SCHEDULES_READ: "List and read the schedules of workflows.",
    Permission.SCHEDULES_MANAGE: "Create, change and delete schedules.",
    Permission.INTEGRATIONS_READ: "List integrations (never their secrets).",
    Permission.INTEGRATIONS_MANAGE: "Create and delete integrations and their secrets.",
    Permission.AUDIT_READ: "Read the audit log.",
    Permission.USAGE_READ: "See the organization's usage against its tier (runs, concurrency, tokens, GPU-seconds).",
}

_VIEWER = frozenset(
    {
        Permission.ORG_READ,
        Permission.MEMBERS_READ,
        Permission.AGENTS_READ,
        Permission.WORKFLOWS_READ,
        Permission.EXECUTIONS_READ,
        Permission.SCHEDULES_READ,
        Permission.INTEGRATIONS_READ,
    }
)
_DEVELOPER = _VIEWER | {
    Permission.AGENTS_WRITE,
    Permission.AGENTS_DELETE,
    Permission.WORKFLOWS_WRITE,
    Permission.EXECUTIONS_CREATE,
    Permission.EXECUTIONS_CANCEL,
    Permission.SCHEDULES_MANAGE,
}
_ADMIN = _DEVELOPER | {
    Permission.ORG_UPDATE,
    Permission.MEMBERS_MANAGE,
    Permission.INTEGRATIONS_MANAGE,
    Permission.AUDIT_READ,
    Permission.USAGE_READ,
}
_OWNER = _ADMIN | {Permission.ORG_CHANGE_TIER, Permission.MEMBERS_MANAGE_OWNERS}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: _VIEWER,
    Role.DEVELOPER: frozenset(_DEVELOPER),
    Role.ADMIN: frozenset(_ADMIN),
    Role.OWNER: frozenset(_OWNER),
}


def role_allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]
