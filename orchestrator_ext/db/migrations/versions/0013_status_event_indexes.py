"""Indexes for an organization's stream of status changes (``GET /organizations/{id}/events``).

The stream reads an organization's status events after the last id it sent,
and again those inserted in the last seconds (a transaction that committed
after a later id was sent). With only ``org_id`` indexed, each read went
through every event of the organization, log lines included, at every wake
of every listener. Two partial indexes, on status events only (a small part
of the table: log lines are most of it): ``(org_id, id)`` for the ids after
the last one sent (and the newest one, where a stream starts), ``(org_id,
created_at)`` for the recent ones. A run's own stream already has
``(execution_id, id)``.

Built in the migration's transaction (writes to ``execution_events`` wait for
it): migrations run before the server and its workers serve.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUS_ONLY = sa.text("kind = 'status'")


def upgrade() -> None:
    op.create_index(
        "ix_execution_events_org_status_id", "execution_events", ["org_id", "id"], postgresql_where=STATUS_ONLY
    )
    op.create_index(
        "ix_execution_events_org_status_created",
        "execution_events",
        ["org_id", "created_at"],
        postgresql_where=STATUS_ONLY,
    )


def downgrade() -> None:
    op.drop_index("ix_execution_events_org_status_created", table_name="execution_events")
    op.drop_index("ix_execution_events_org_status_id", table_name="execution_events")
