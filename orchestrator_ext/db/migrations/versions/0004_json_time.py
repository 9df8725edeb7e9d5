"""A SQL function that writes a timestamp exactly as the API's pydantic models do.

The fast list path (``db/reads.py``) has PostgreSQL write each page's JSON;
timestamps must read the same as everywhere else in the API: UTC, ISO 8601,
``Z``, microseconds only when there are some (Python's ``isoformat``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
CREATE OR REPLACE FUNCTION orchestrator_json_time(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
      || CASE WHEN date_part('microseconds', t)::bigint % 1000000 = 0
              THEN '' ELSE to_char(t AT TIME ZONE 'UTC', '.US') END
      || 'Z'
$$;
"""
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION orchestrator_json_time(timestamptz)")
