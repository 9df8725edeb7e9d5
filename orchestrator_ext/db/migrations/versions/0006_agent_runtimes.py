"""Agent runtimes: runs that wait for a human, and resume with the answer.

A framework run that stops at a human-approval node ends its attempt
``waiting``: ``waiting_for`` holds what it asks. ``POST /executions/{id}/resume``
stores the answer in ``resume`` and puts the run back in the queue; the next
attempt continues from its checkpoint. A waiting run can be cancelled like a
queued one.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES = ("queued", "running", "waiting", "succeeded", "failed", "cancelled", "timed_out")
_OLD_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "timed_out")

_CANCEL = """
CREATE OR REPLACE FUNCTION orchestrator_cancel_execution(p_id uuid, p_reason text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  found_status text;
BEGIN
  UPDATE workflow_executions
     SET status = 'cancelled', cancel_requested_at = clock_timestamp(), finished_at = clock_timestamp(),
         updated_at = clock_timestamp(),
         error = jsonb_build_object('kind', 'cancelled', 'message', p_reason || {message})
   WHERE id = p_id AND status IN {states}
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
"""


def _in(values: tuple[str, ...]) -> str:
    return "status IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    op.add_column("workflow_executions", sa.Column("waiting_for", postgresql.JSONB(), nullable=True))
    op.add_column("workflow_executions", sa.Column("resume", postgresql.JSONB(), nullable=True))
    op.drop_constraint("status_known", "workflow_executions", type_="check")
    op.create_check_constraint("status_known", "workflow_executions", _in(_STATUSES))
    message = "CASE WHEN status = 'waiting' THEN ' while it waited for an answer' ELSE ' before it started' END"
    op.execute(_CANCEL.replace("{states}", "('queued', 'waiting')").replace("{message}", message))


def downgrade() -> None:
    # a waiting run cannot be represented before this revision: it ends cancelled
    op.execute(
        "UPDATE workflow_executions SET status = 'cancelled', finished_at = clock_timestamp(), "
        "error = jsonb_build_object('kind', 'cancelled', 'message', 'cancelled by a database downgrade') "
        "WHERE status = 'waiting'"
    )
    op.drop_constraint("status_known", "workflow_executions", type_="check")
    op.create_check_constraint("status_known", "workflow_executions", _in(_OLD_STATUSES))
    op.execute(_CANCEL.replace("{states}", "('queued')").replace("{message}", "' before it started'"))
    op.drop_column("workflow_executions", "resume")
    op.drop_column("workflow_executions", "waiting_for")
