"""Executions remember the correlation id of the request that started them.

The worker that runs an execution (the execution engine) logs under that id,
so one id follows a request from the API into its run.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("workflow_executions", sa.Column("correlation_id", sa.String(length=128), nullable=True))


def downgrade() -> None:
    op.drop_column("workflow_executions", "correlation_id")
