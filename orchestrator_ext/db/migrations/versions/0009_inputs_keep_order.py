"""Inputs keep the order they were given in: ``json``, not ``jsonb``.

``jsonb`` stores an object's keys sorted (by length, then bytes), so a run's
inputs came back reordered: papermill injects parameters in the order it is
given them, and the injected cell of a notebook run differed from papermill's.
``json`` keeps the text as it was sent. The executed notebook goes the same
way (its ``metadata.papermill.parameters``). Nothing queries inside these
columns, so nothing needs ``jsonb``'s operators or indexes.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, column, its default): what keeps the order of the keys it was given
COLUMNS = (
    ("workflow_executions", "inputs", "'{}'"),
    ("schedules", "inputs", "'{}'"),
    ("execution_notebooks", "content", None),  # metadata.papermill.parameters, in the inputs' order
)


def _retype(kind: str) -> None:
    """Change each column to ``kind`` (a default cannot be cast along: dropped, then set again)."""
    new_type = postgresql.JSON() if kind == "json" else postgresql.JSONB()
    for table, column, default in COLUMNS:
        if default is not None:
            op.alter_column(table, column, server_default=None)
        op.alter_column(table, column, type_=new_type, postgresql_using=f"{column}::{kind}")
        if default is not None:
            op.alter_column(table, column, server_default=sa.text(f"{default}::{kind}"))


def upgrade() -> None:
    _retype("json")


def downgrade() -> None:
    _retype("jsonb")
