"""Rate limits held in PostgreSQL: one row per bucket, its theoretical arrival time (GCRA), in an
unlogged table (no WAL: cheap to update, emptied by a crash).

``rate_limits`` is shared by every server process and replica, so a limit holds
however many of them answer. It is not a tenant table: its keys name a user, an
organization or a client address, and only the rate limiter reads it.
``resource_tiers`` gains the per-organization rates of each tier.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: per tier: writes per minute, executions per minute (an organization's whole membership together)
TIER_RATES = {
    "free": (600, 600),
    "team": (3000, 3000),
    "gpu-small": (3000, 3000),
    "gpu-large": (3000, 3000),
    "enterprise": (30000, 30000),
}


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("tat", sa.DateTime(timezone=True), nullable=False),
        # UNLOGGED: no WAL, so a write's bucket update waits for no disk flush (measured: with a logged
        # table, POST /agents fell from 402 to 156 req/s, 8 clients of one user queueing on its row's
        # flush); after a crash the buckets start empty, which only forgives a minute of requests
        prefixes=["UNLOGGED"],
    )
    op.create_index("ix_rate_limits_tat", "rate_limits", ["tat"])
    op.add_column("resource_tiers", sa.Column("writes_per_minute", sa.Integer(), nullable=False, server_default="600"))
    op.add_column(
        "resource_tiers", sa.Column("executes_per_minute", sa.Integer(), nullable=False, server_default="600")
    )
    op.create_check_constraint("writes_rate_positive", "resource_tiers", "writes_per_minute > 0")
    op.create_check_constraint("executes_rate_positive", "resource_tiers", "executes_per_minute > 0")
    for name, (writes, executes) in TIER_RATES.items():
        op.execute(
            sa.text(
                "UPDATE resource_tiers SET writes_per_minute = :w, executes_per_minute = :e WHERE name = :n"
            ).bindparams(w=writes, e=executes, n=name)
        )


def downgrade() -> None:
    op.drop_constraint("executes_rate_positive", "resource_tiers", type_="check")
    op.drop_constraint("writes_rate_positive", "resource_tiers", type_="check")
    op.drop_column("resource_tiers", "executes_per_minute")
    op.drop_column("resource_tiers", "writes_per_minute")
    op.drop_index("ix_rate_limits_tat", table_name="rate_limits")
    op.drop_table("rate_limits")
