"""An organization may let its framework runs share a process: ``organizations.runs_per_process``.

1 (the default, every existing organization) keeps today's behaviour: each
framework run is a fresh process forked from the fork server and used once.
With N > 1 a forked process serves up to N consecutive runs of that
organization, one at a time (``docs/executions.md`` says what isolation
between those runs is given up). Bounded to 1-1000 by a check constraint, as
the API bounds it.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("organizations", sa.Column("runs_per_process", sa.Integer(), nullable=False, server_default="1"))
    op.create_check_constraint("runs_per_process_range", "organizations", "runs_per_process BETWEEN 1 AND 1000")


def downgrade() -> None:
    op.drop_constraint("runs_per_process_range", "organizations", type_="check")
    op.drop_column("organizations", "runs_per_process")
