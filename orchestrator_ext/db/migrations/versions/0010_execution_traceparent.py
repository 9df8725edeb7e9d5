"""Executions carry the W3C ``traceparent`` of the request that started them.

With tracing on (``OTEL_EXPORTER_OTLP_ENDPOINT``), the worker that claims the
run continues that trace: the claim, the run, its process and its steps
appear under the ``POST .../execute`` that queued it (docs/operations/tracing.md).
Empty when tracing is off, and for runs a schedule starts (their trace
begins at the worker).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # 55 characters for version 00; a later version may append fields (the W3C spec allows it)
    op.add_column("workflow_executions", sa.Column("traceparent", sa.String(length=128), nullable=True))


def downgrade() -> None:
    op.drop_column("workflow_executions", "traceparent")
