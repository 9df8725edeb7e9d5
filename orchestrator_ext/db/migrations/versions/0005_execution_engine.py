"""The execution engine: the queue's columns, run events, executed notebooks, schedules.

The database is the queue. ``orchestrator_claim_execution`` hands the oldest
runnable execution to a worker under ``FOR UPDATE SKIP LOCKED`` while keeping
each organization under its concurrency limit: claims for one organization
take a transaction-scoped advisory lock, so the count of its running
executions stays true until the claim commits.

Every status change writes an ``execution_events`` row (a trigger, so the API,
the workers and the scheduler cannot forget one), every event row is
announced with ``NOTIFY orchestrator_events`` for the live event streams, and a
run entering the queue wakes idle workers with ``NOTIFY orchestrator_queue``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT = "orchestrator_is_system() OR org_id = ANY (orchestrator_org_ids())"
NEW_TABLES = ("schedules", "execution_events", "execution_notebooks")

FUNCTIONS = """
-- p_tiers: the resource tiers whose runs this worker takes (GPU workers take GPU tiers); NULL: any
CREATE FUNCTION orchestrator_claim_execution(
  p_worker text, p_lease_seconds double precision, p_tiers text[] DEFAULT NULL
)
RETURNS SETOF workflow_executions
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  candidate record;
  busy uuid[] := '{}';
  allowed integer;
  running integer;
BEGIN
  LOOP
    SELECT e.id, e.org_id INTO candidate
      FROM workflow_executions e JOIN organizations o ON o.id = e.org_id
     WHERE e.status = 'queued' AND e.run_after <= clock_timestamp() AND NOT (e.org_id = ANY (busy))
       AND (p_tiers IS NULL OR o.tier_name = ANY (p_tiers))
     ORDER BY e.run_after, e.created_at
     LIMIT 1 FOR UPDATE OF e SKIP LOCKED;
    IF NOT FOUND THEN
      RETURN;
    END IF;
    -- one claimer per organization at a time: the count below stays true until COMMIT
    PERFORM pg_advisory_xact_lock(hashtextextended('orchestrator.claim:' || candidate.org_id::text, 0));
    SELECT coalesce(o.max_concurrent_executions, t.max_concurrent_executions) INTO allowed
      FROM organizations o JOIN resource_tiers t ON t.name = o.tier_name WHERE o.id = candidate.org_id;
    SELECT count(*) INTO running FROM workflow_executions
     WHERE org_id = candidate.org_id AND status = 'running';
    IF running < allowed THEN
      RETURN QUERY
        UPDATE workflow_executions
           SET status = 'running', attempt = attempt + 1, worker_id = p_worker,
               lease_expires_at = clock_timestamp() + make_interval(secs => p_lease_seconds),
               started_at = clock_timestamp(), finished_at = NULL, updated_at = clock_timestamp()
         WHERE id = candidate.id
        RETURNING *;
      RETURN;
    END IF;
    busy := busy || candidate.org_id;
  END LOOP;
END
$$;

-- Cancel a run: a queued one ends now (it never starts); a running one is marked and its
-- worker told through NOTIFY orchestrator_cancel. Returns the status after the call
-- ('cancelling' while the worker stops it), NULL when the caller cannot see the run.
CREATE FUNCTION orchestrator_cancel_execution(p_id uuid, p_reason text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  found_status text;
BEGIN
  UPDATE workflow_executions
     SET status = 'cancelled', cancel_requested_at = clock_timestamp(), finished_at = clock_timestamp(),
         updated_at = clock_timestamp(),
         error = jsonb_build_object('kind', 'cancelled', 'message', p_reason || ' before it started')
   WHERE id = p_id AND status = 'queued'
  RETURNING status INTO found_status;
  IF FOUND THEN
    RETURN found_status;
  END IF;
  UPDATE workflow_executions
     SET cancel_requested_at = coalesce(cancel_requested_at, clock_timestamp()), updated_at = clock_timestamp()
   WHERE id = p_id AND status = 'running'
  RETURNING status INTO found_status;
  IF FOUND THEN
    PERFORM pg_notify('orchestrator_cancel', p_id::text);
    RETURN 'cancelling';
  END IF;
  SELECT status INTO found_status FROM workflow_executions WHERE id = p_id;
  RETURN found_status;
END
$$;

CREATE FUNCTION orchestrator_execution_status_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO execution_events (execution_id, org_id, attempt, kind, data)
  VALUES (NEW.id, NEW.org_id, NEW.attempt, 'status',
          jsonb_strip_nulls(jsonb_build_object(
            'status', NEW.status, 'attempt', NEW.attempt, 'error', NEW.error,
            'worker', CASE WHEN NEW.status = 'running' THEN NEW.worker_id END)));
  IF NEW.status = 'queued' THEN
    PERFORM pg_notify('orchestrator_queue', '');  -- wakes idle workers
  END IF;
  RETURN NULL;
END
$$;

CREATE FUNCTION orchestrator_announce_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('orchestrator_events', NEW.execution_id::text);
  RETURN NULL;
END
$$;

CREATE TRIGGER execution_created_event AFTER INSERT ON workflow_executions
  FOR EACH ROW EXECUTE FUNCTION orchestrator_execution_status_event();
CREATE TRIGGER execution_status_event AFTER UPDATE OF status, attempt ON workflow_executions
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.attempt IS DISTINCT FROM NEW.attempt)
  EXECUTE FUNCTION orchestrator_execution_status_event();
CREATE TRIGGER execution_event_announced AFTER INSERT ON execution_events
  FOR EACH ROW EXECUTE FUNCTION orchestrator_announce_event();
"""


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("workflow_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column("inputs", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("overlap_policy", sa.String(length=16), server_default="skip", nullable=False),
        sa.Column("misfire_policy", sa.String(length=16), server_default="run_once", nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("clock_timestamp()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("clock_timestamp()"), nullable=False),
        sa.CheckConstraint("overlap_policy IN ('skip', 'queue', 'cancel_previous')", name="overlap_policy_known"),
        sa.CheckConstraint("misfire_policy IN ('run_once', 'skip')", name="misfire_policy_known"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workflow_id"], ["workflows.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_schedules_workflow", "schedules", ["workflow_id", "created_at"])
    op.create_index("ix_schedules_org_id", "schedules", ["org_id"])
    op.create_index("ix_schedules_due", "schedules", ["next_run_at"], postgresql_where=sa.text("enabled"))

    op.add_column("workflow_executions", sa.Column("timeout_seconds", sa.Integer(), nullable=True))
    op.add_column(
        "workflow_executions", sa.Column("max_attempts", sa.Integer(), server_default="1", nullable=False)
    )
    op.add_column(
        "workflow_executions",
        sa.Column("run_after", sa.DateTime(timezone=True), server_default=sa.text("clock_timestamp()"), nullable=False),
    )
    op.add_column("workflow_executions", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("workflow_executions", sa.Column("worker_id", sa.String(length=200), nullable=True))
    op.add_column("workflow_executions", sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("workflow_executions", sa.Column("schedule_id", sa.UUID(), nullable=True))
    op.add_column("workflow_executions", sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True))
    op.create_foreign_key(
        "workflow_executions_schedule_id_fkey",
        "workflow_executions",
        "schedules",
        ["schedule_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_check_constraint("max_attempts_positive", "workflow_executions", "max_attempts >= 1")
    op.drop_index("ix_executions_queue", table_name="workflow_executions")
    op.create_index(
        "ix_executions_queue",
        "workflow_executions",
        ["run_after", "created_at"],
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.create_index(
        "ix_executions_running", "workflow_executions", ["org_id"], postgresql_where=sa.text("status = 'running'")
    )
    op.create_index(
        "ix_executions_leases",
        "workflow_executions",
        ["lease_expires_at"],
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_index(
        "uq_executions_schedule_firing", "workflow_executions", ["schedule_id", "scheduled_for"], unique=True
    )

    op.create_table(
        "execution_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("execution_id", sa.UUID(), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="0", nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("data", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("clock_timestamp()"), nullable=False),
        sa.CheckConstraint("kind IN ('status', 'log', 'step')", name="kind_known"),
        sa.ForeignKeyConstraint(["execution_id"], ["workflow_executions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_execution_events_execution", "execution_events", ["execution_id", "id"])
    op.create_index("ix_execution_events_org_id", "execution_events", ["org_id"])

    op.create_table(
        "execution_notebooks",
        sa.Column("execution_id", sa.UUID(), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("content", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("clock_timestamp()"), nullable=False),
        sa.ForeignKeyConstraint(["execution_id"], ["workflow_executions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("execution_id"),
    )
    op.create_index("ix_execution_notebooks_org_id", "execution_notebooks", ["org_id"])

    for table in NEW_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({TENANT}) WITH CHECK ({TENANT})")
    op.execute(FUNCTIONS)


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER execution_event_announced ON execution_events; "
        "DROP TRIGGER execution_status_event ON workflow_executions; "
        "DROP TRIGGER execution_created_event ON workflow_executions; "
        "DROP FUNCTION orchestrator_announce_event(); DROP FUNCTION orchestrator_execution_status_event(); "
        "DROP FUNCTION orchestrator_claim_execution(text, double precision, text[]); "
        "DROP FUNCTION orchestrator_cancel_execution(uuid, text);"
    )
    op.drop_table("execution_notebooks")
    op.drop_table("execution_events")
    op.drop_index("uq_executions_schedule_firing", table_name="workflow_executions")
    op.drop_index("ix_executions_leases", table_name="workflow_executions")
    op.drop_index("ix_executions_running", table_name="workflow_executions")
    op.drop_index("ix_executions_queue", table_name="workflow_executions")
    op.create_index(
        "ix_executions_queue", "workflow_executions", ["created_at"], postgresql_where=sa.text("status = 'queued'")
    )
    op.drop_constraint("max_attempts_positive", "workflow_executions", type_="check")
    op.drop_constraint("workflow_executions_schedule_id_fkey", "workflow_executions", type_="foreignkey")
    for column in (
        "scheduled_for",
        "schedule_id",
        "cancel_requested_at",
        "worker_id",
        "lease_expires_at",
        "run_after",
        "max_attempts",
        "timeout_seconds",
    ):
        op.drop_column("workflow_executions", column)
    op.drop_table("schedules")
