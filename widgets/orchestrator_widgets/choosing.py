"""Which organization ``Dashboard()`` and ``Admin()`` open when they are not told.

A JupyterHub user has a personal organization (made the first time they are
seen, theirs alone) and may be invited into others. Opening "the first
organization listed" (``GET /organizations`` lists the newest first) opened
the newest team they belonged to (a colleague's they were invited into, one a
notebook made and left behind), and changed whenever one more came. The choice here is deliberate and
stable, from the caller's memberships (``GET /users/me``):

1. the caller's personal organization;
2. else one the caller owns (the one they have owned longest);
3. else the membership they have held longest.

Asked for one, ``"..."`` is an organization's id, or the name of one of the
caller's organizations (exact first, then ignoring case); a name two of them
share is refused with their ids, so the widget never guesses.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from orchestrator_ext.client import Client, ClientError


class OrganizationNotFound(ClientError):
    """No organization, or more than one, answers to the name given; the message says which to pass."""


def default_membership(memberships: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The membership a widget opens by default (see the module's docstring), or ``None`` with none."""
    if not memberships:
        return None
    personal = [m for m in memberships if m.get("personal")]
    owned = [m for m in memberships if m.get("role") == "owner"]
    candidates = personal or owned or list(memberships)
    # the id breaks a tie, so the choice never flips between two reads
    return min(candidates, key=lambda m: (_joined(m), str(m["org_id"])))


def named_membership(memberships: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    """The caller's organization called ``name`` (exact, else ignoring case); refused when none or several."""
    for same in (lambda m: m["name"] == name, lambda m: str(m["name"]).casefold() == name.casefold()):
        found = [m for m in memberships if same(m)]
        if len(found) == 1:
            return found[0]
        if found:
            ids = ", ".join(str(m["org_id"]) for m in found)
            raise OrganizationNotFound(f"{len(found)} of your organizations are named '{name}': pass its id ({ids}).")
    raise OrganizationNotFound(f"You belong to no organization named '{name}' (pass its name or id).")


def organization_id(client: Client, wanted: str | None, me: dict[str, Any] | None = None) -> str | None:
    """The id of the organization to open: ``wanted`` (an id, or one of the caller's organizations' names),
    else the default membership; ``None`` when the caller belongs to none. ``me`` saves re-reading
    ``GET /users/me`` when the caller has it already."""
    if wanted is not None and _is_uuid(wanted):
        return wanted
    memberships: list[dict[str, Any]] = (me or client.me()).get("memberships") or []
    if wanted is not None:
        return str(named_membership(memberships, wanted)["org_id"])
    chosen = default_membership(memberships)
    return None if chosen is None else str(chosen["org_id"])


def _joined(membership: dict[str, Any]) -> datetime:
    """When the caller joined (``joined_at``); a membership that does not say sorts last."""
    text = str(membership.get("joined_at") or "")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
