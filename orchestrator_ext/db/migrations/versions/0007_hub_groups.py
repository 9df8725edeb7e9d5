"""Organizations that hub groups name, and memberships the hub manages.

``organizations.slug`` is an organization's short name: a JupyterHub group
``org:<slug>`` (or ``org:<slug>:<role>``) makes its members members of that
organization. ``organization_members.source`` says where a membership comes
from: NULL for one granted through the API, ``hub`` for one a hub group gives
(added and removed with the group; the API refuses to change it).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SLUG_PATTERN = "^[a-z0-9][a-z0-9-]{0,62}$"  # the same as models.SLUG_PATTERN, frozen here


def upgrade() -> None:
    op.add_column("organizations", sa.Column("slug", sa.String(63), nullable=True))
    op.create_check_constraint("slug_format", "organizations", f"slug ~ '{SLUG_PATTERN}'")
    op.create_index("uq_organizations_slug", "organizations", ["slug"], unique=True)
    op.add_column("organization_members", sa.Column("source", sa.String(16), nullable=True))
    op.create_check_constraint("source_known", "organization_members", "source IN ('hub')")


def downgrade() -> None:
    op.drop_constraint("source_known", "organization_members", type_="check")
    op.drop_column("organization_members", "source")
    op.drop_index("uq_organizations_slug", table_name="organizations")
    op.drop_constraint("slug_format", "organizations", type_="check")
    op.drop_column("organizations", "slug")
