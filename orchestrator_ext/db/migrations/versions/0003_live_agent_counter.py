"""Live agents counted per organization, the tier's agent limit enforced by a trigger.

Creating an agent used to lock the organization row while counting its agents
(a scan that grows with the organization) so that two creates could not both
pass the limit. Now ``organizations.live_agents`` is kept by a trigger on
``agents``, and an insert (or an undelete) increments it only while it is
below the limit — one atomic UPDATE, whatever path wrote the agent. The
trigger is deferred to COMMIT, so concurrent creates in one organization
serialize only for the instant of their commits.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTER = """
CREATE OR REPLACE FUNCTION orchestrator_take_agent_slot(p_org uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE v_limit integer; v_tier text;
BEGIN
  UPDATE organizations o SET live_agents = o.live_agents + 1
    FROM resource_tiers t
   WHERE o.id = p_org AND t.name = o.tier_name AND o.live_agents < coalesce(o.max_agents, t.max_agents);
  IF NOT FOUND THEN
    SELECT coalesce(o.max_agents, t.max_agents), t.name INTO v_limit, v_tier
      FROM organizations o JOIN resource_tiers t ON t.name = o.tier_name WHERE o.id = p_org;
    RAISE EXCEPTION 'The organization has reached its limit of % agents (tier ''%'')', v_limit, v_tier
      USING ERRCODE = 'check_violation', CONSTRAINT = 'agents_within_tier_limit';
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION orchestrator_count_agents() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' AND NEW.deleted_at IS NULL THEN
    PERFORM orchestrator_take_agent_slot(NEW.org_id);
  ELSIF TG_OP = 'UPDATE' AND OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN
    UPDATE organizations SET live_agents = live_agents - 1 WHERE id = NEW.org_id;
  ELSIF TG_OP = 'UPDATE' AND OLD.deleted_at IS NOT NULL AND NEW.deleted_at IS NULL THEN
    PERFORM orchestrator_take_agent_slot(NEW.org_id);
  ELSIF TG_OP = 'DELETE' AND OLD.deleted_at IS NULL THEN
    UPDATE organizations SET live_agents = live_agents - 1 WHERE id = OLD.org_id;
  END IF;
  RETURN NULL;
END
$$;

-- deferred to COMMIT: the organization row is locked for the instant of the
-- commit, not from the INSERT to the end of the transaction
CREATE CONSTRAINT TRIGGER agents_count_live AFTER INSERT OR UPDATE OF deleted_at OR DELETE ON agents
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION orchestrator_count_agents();
"""


def upgrade() -> None:
    op.add_column("organizations", sa.Column("live_agents", sa.Integer(), server_default="0", nullable=False))
    op.create_check_constraint("live_agents_non_negative", "organizations", "live_agents >= 0")
    op.execute(
        "UPDATE organizations o SET live_agents = "
        "(SELECT count(*) FROM agents a WHERE a.org_id = o.id AND a.deleted_at IS NULL)"
    )
    op.execute(COUNTER)


def downgrade() -> None:
    op.execute("DROP TRIGGER agents_count_live ON agents")
    op.execute("DROP FUNCTION orchestrator_count_agents(); DROP FUNCTION orchestrator_take_agent_slot(uuid);")
    op.drop_constraint("live_agents_non_negative", "organizations", type_="check")
    op.drop_column("organizations", "live_agents")
