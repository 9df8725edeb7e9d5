"""Operator actions on resource tiers, outside any tenant (``jupyter orchestrator set-tier``)."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, text

from ..db.system import system_transaction_sync


def set_tier(engine: Engine, org_id: str, tier: str) -> str:
    """Move an organization to ``tier``; refuse a tier whose agent limit its live agents exceed."""
    try:
        org = uuid.UUID(org_id)
    except ValueError as exc:
        raise SystemExit(f"'{org_id}' is not an organization id (a UUID)") from exc
    with system_transaction_sync(engine) as conn:
        limit = conn.execute(text("SELECT max_agents FROM resource_tiers WHERE name = :t"), {"t": tier}).scalar()
        if limit is None:
            known = conn.execute(text("SELECT string_agg(name, ', ' ORDER BY name) FROM resource_tiers")).scalar()
            raise SystemExit(f"no tier '{tier}' (known: {known})")
        row = conn.execute(
            text("SELECT name, live_agents, max_agents FROM organizations WHERE id = :o FOR UPDATE"), {"o": org}
        ).first()
        if row is None:
            raise SystemExit(f"no organization with id '{org_id}'")
        effective = row.max_agents if row.max_agents is not None else limit
        if row.live_agents > effective:
            raise SystemExit(f"'{row.name}' has {row.live_agents} agents; tier '{tier}' allows {effective}")
        conn.execute(
            text("UPDATE organizations SET tier_name = :t, updated_at = clock_timestamp() WHERE id = :o"),
            {"t": tier, "o": org},
        )
        conn.execute(
            text(
                "INSERT INTO audit_events (org_id, action, resource_type, resource_id, details) "
                "VALUES (:o, 'organization.set_tier', 'organization', :r, jsonb_build_object('tier', CAST(:t AS text)))"
            ),
            {"o": org, "r": str(org), "t": tier},
        )
    return f"organization '{row.name}' is now on tier '{tier}'"
