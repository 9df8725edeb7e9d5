"""A worker claims only the kinds of run it can start now: ``p_kinds`` of ``orchestrator_claim_execution``.

A worker that has just started (or whose fork server died) has no process
ready for framework runs until its fork server has imported the frameworks
(seconds): it claims notebook runs meanwhile (``p_kinds = {notebook}``) and
framework runs once it can start them (``{notebook, framework}``). A run it
cannot start stays in the queue, in its place, for a worker that can. NULL:
every kind (as before).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS_COMMENT = "-- p_kinds: 'notebook' and/or 'framework' (every other agent framework); NULL: any\n"
CLAIM = """
-- p_tiers: the resource tiers whose runs this worker takes (GPU workers take GPU tiers); NULL: any
-- p_kinds: 'notebook' and/or 'framework' (every other agent framework); NULL: any
CREATE FUNCTION orchestrator_claim_execution(
  p_worker text, p_lease_seconds double precision, p_tiers text[] DEFAULT NULL, p_kinds text[] DEFAULT NULL
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
      FROM workflow_executions e JOIN organizations o ON o.id = e.org_id JOIN agents a ON a.id = e.agent_id
     WHERE e.status = 'queued' AND e.run_after <= clock_timestamp() AND NOT (e.org_id = ANY (busy))
       AND (p_tiers IS NULL OR o.tier_name = ANY (p_tiers))
       AND (p_kinds IS NULL
            OR (CASE WHEN a.framework = 'notebook' THEN 'notebook' ELSE 'framework' END) = ANY (p_kinds))
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
"""


def upgrade() -> None:
    op.execute("DROP FUNCTION orchestrator_claim_execution(text, double precision, text[])")
    op.execute(CLAIM)


def downgrade() -> None:
    op.execute("DROP FUNCTION orchestrator_claim_execution(text, double precision, text[], text[])")
    previous = CLAIM.replace(", p_kinds text[] DEFAULT NULL", "").replace(
        """
       AND (p_kinds IS NULL
            OR (CASE WHEN a.framework = 'notebook' THEN 'notebook' ELSE 'framework' END) = ANY (p_kinds))""",
        "",
    )
    previous = previous.replace(KINDS_COMMENT, "")
    op.execute(previous.replace(" JOIN agents a ON a.id = e.agent_id", ""))
