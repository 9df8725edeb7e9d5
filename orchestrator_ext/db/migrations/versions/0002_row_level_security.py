"""Row-level security, immutable workflow versions, resource tiers.

Every tenant table gets one policy keyed on two per-transaction settings that
the service layer sets (``orchestrator.user_id`` and ``orchestrator.org_ids``)
through :func:`orchestrator_enter`. ``FORCE`` makes the policies apply to the
table owner too, so a deployment that runs the server as the owner is still
walled; only a superuser or a BYPASSRLS role ignores them, and the server warns
when it is given one.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SYSTEM = "orchestrator_is_system()"
IN_ORGS = "= ANY (orchestrator_org_ids())"

# table -> the policy expression that makes a row visible and writable
POLICIES: dict[str, str] = {
    "organizations": f"{SYSTEM} OR id {IN_ORGS}",
    "organization_members": f"{SYSTEM} OR org_id {IN_ORGS} OR user_id = orchestrator_user_id()",
    "agents": f"{SYSTEM} OR org_id {IN_ORGS}",
    "workflows": f"{SYSTEM} OR org_id {IN_ORGS}",
    "workflow_versions": f"{SYSTEM} OR org_id {IN_ORGS}",
    "workflow_executions": f"{SYSTEM} OR org_id {IN_ORGS}",
    "integrations": f"{SYSTEM} OR org_id {IN_ORGS}",
    "audit_events": f"{SYSTEM} OR org_id {IN_ORGS} OR (org_id IS NULL AND actor_user_id = orchestrator_user_id())",
}

FUNCTIONS = """
CREATE OR REPLACE FUNCTION orchestrator_user_id() RETURNS uuid
LANGUAGE sql STABLE AS $$
  SELECT nullif(current_setting('orchestrator.user_id', true), '')::uuid
$$;

CREATE OR REPLACE FUNCTION orchestrator_org_ids() RETURNS uuid[]
LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('orchestrator.org_ids', true), ''), '{}')::uuid[]
$$;

CREATE OR REPLACE FUNCTION orchestrator_is_system() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT coalesce(current_setting('orchestrator.system', true), '') = 'on'
$$;

-- Enter a tenant scope for the rest of the transaction: the caller's id,
-- then the organizations they belong to; returns their memberships.
CREATE OR REPLACE FUNCTION orchestrator_enter(p_user uuid)
RETURNS TABLE (org_id uuid, role text, personal boolean)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM set_config('orchestrator.user_id', p_user::text, true);
  PERFORM set_config(
    'orchestrator.org_ids',
    coalesce((SELECT array_agg(m.org_id)::text FROM organization_members m WHERE m.user_id = p_user), '{}'),
    true);
  RETURN QUERY
    SELECT m.org_id, m.role::text, (o.personal_for_user_id IS NOT DISTINCT FROM p_user)
    FROM organization_members m JOIN organizations o ON o.id = m.org_id
    WHERE m.user_id = p_user;
END
$$;

CREATE OR REPLACE FUNCTION orchestrator_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END
$$;
"""

TIERS = [
    # name, title, cpu, memory_mib, gpu_count, gpu_type, max_concurrent_executions, max_agents
    ("free", "Free", 1.0, 2048, 0, None, 2, 50),
    ("team", "Team", 4.0, 8192, 0, None, 10, 1000),
    ("gpu-small", "GPU small (1x T4)", 8.0, 32768, 1, "nvidia-tesla-t4", 10, 1000),
    ("gpu-large", "GPU large (1x A100)", 16.0, 131072, 1, "nvidia-a100", 20, 1000),
    ("enterprise", "Enterprise", 32.0, 262144, 0, None, 100, 100000),
]


def upgrade() -> None:
    op.execute(FUNCTIONS)
    for table, expression in POLICIES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({expression}) WITH CHECK ({expression})")
    op.execute(
        "CREATE TRIGGER workflow_versions_immutable BEFORE UPDATE OR DELETE ON workflow_versions "
        "FOR EACH ROW EXECUTE FUNCTION orchestrator_refuse_change()"
    )
    tiers = sa.table(
        "resource_tiers",
        sa.column("name", sa.String),
        sa.column("title", sa.String),
        sa.column("cpu", sa.Float),
        sa.column("memory_mib", sa.Integer),
        sa.column("gpu_count", sa.Integer),
        sa.column("gpu_type", sa.String),
        sa.column("max_concurrent_executions", sa.Integer),
        sa.column("max_agents", sa.Integer),
    )
    keys = ["name", "title", "cpu", "memory_mib", "gpu_count", "gpu_type", "max_concurrent_executions", "max_agents"]
    op.bulk_insert(tiers, [dict(zip(keys, row, strict=True)) for row in TIERS])


def downgrade() -> None:
    op.execute("DELETE FROM resource_tiers")
    op.execute("DROP TRIGGER workflow_versions_immutable ON workflow_versions")
    for table in POLICIES:
        op.execute(f"DROP POLICY tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute(
        "DROP FUNCTION orchestrator_refuse_change(); DROP FUNCTION orchestrator_enter(uuid); "
        "DROP FUNCTION orchestrator_is_system(); DROP FUNCTION orchestrator_org_ids(); "
        "DROP FUNCTION orchestrator_user_id();"
    )
