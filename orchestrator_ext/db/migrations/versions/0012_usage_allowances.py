"""Each tier's monthly allowances: runs, model tokens and GPU-seconds (``GET /organizations/{id}/usage``).

``resource_tiers`` gains three nullable columns; NULL means no allowance (the
enterprise tier). They are what ``Admin()`` and the usage endpoint show an
organization's month against, beside the limits enforced since the start
(concurrent runs, agents, rates). GPU-seconds are 0 on tiers without GPUs.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: per tier: runs, tokens (prompt + completion) and GPU-seconds a month; None: no allowance
TIER_ALLOWANCES: dict[str, tuple[int | None, int | None, int | None]] = {
    "free": (1_000, 1_000_000, 0),
    "team": (20_000, 20_000_000, 0),
    "gpu-small": (20_000, 20_000_000, 36_000),
    "gpu-large": (50_000, 50_000_000, 180_000),
    "enterprise": (None, None, None),
}
COLUMNS = ("monthly_runs", "monthly_tokens", "monthly_gpu_seconds")


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("resource_tiers", sa.Column(column, sa.BigInteger(), nullable=True))
        op.create_check_constraint(f"{column}_non_negative", "resource_tiers", f"{column} IS NULL OR {column} >= 0")
    for name, (runs, tokens, gpu_seconds) in TIER_ALLOWANCES.items():
        op.execute(
            sa.text(
                "UPDATE resource_tiers SET monthly_runs = :r, monthly_tokens = :t, monthly_gpu_seconds = :g "
                "WHERE name = :n"
            ).bindparams(r=runs, t=tokens, g=gpu_seconds, n=name)
        )


def downgrade() -> None:
    for column in reversed(COLUMNS):
        op.drop_constraint(f"{column}_non_negative", "resource_tiers", type_="check")
        op.drop_column("resource_tiers", column)
