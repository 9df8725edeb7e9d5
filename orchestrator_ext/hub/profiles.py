"""Server profiles and the resource tiers that allow them (the hub side).

One list for both hub modes: the team mode applies a profile's limits to a
local process (:mod:`.spawner`), the cluster mode gives KubeSpawner the
chart's ``singleuser.profileList`` with the same slugs
(``hub_config/kubernetes.py``). A user may start a profile when one of their
organizations is on a tier that allows it; the hub asks the API which tiers
those are, as the user (:func:`fetch_tiers`), so the hub never needs the
database.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

#: every resource tier of the database (migration 0002)
ALL_TIERS: frozenset[str] = frozenset({"free", "team", "gpu-small", "gpu-large", "enterprise"})
GPU_TIERS: frozenset[str] = frozenset({"gpu-small", "gpu-large"})


@dataclass(frozen=True)
class Profile:
    """A kind of notebook server a user may start."""

    slug: str
    display_name: str
    description: str
    #: the organization tiers that allow it
    tiers: frozenset[str]
    cpu_limit: float
    mem_limit: str
    gpus: int = 0
    default: bool = False

    @property
    def open_to_all(self) -> bool:
        """Every tier allows it: no need to ask for the user's tiers."""
        return self.tiers >= ALL_TIERS


#: the same slugs, sizes and GPU as ``jupyterhub.singleuser.profileList`` in helm/values.yaml
PROFILES: tuple[Profile, ...] = (
    Profile("cpu-small", "CPU small", "2 CPUs, 4 GB of memory", ALL_TIERS, 2, "4G", default=True),
    Profile("cpu-large", "CPU large", "8 CPUs, 32 GB of memory", ALL_TIERS - {"free"}, 8, "32G"),
    Profile("gpu", "GPU", "1 NVIDIA GPU, 8 CPUs, 48 GB of memory", GPU_TIERS, 8, "48G", gpus=1),
)


class ProfileRefused(Exception):
    """The profile asked for is unknown, or none of the user's organizations' tiers allows it."""


class TierLookupFailed(ProfileRefused):
    """The API could not say which tiers the user's organizations are on."""


def find(slug: str, profiles: Sequence[Profile] = PROFILES) -> Profile:
    for profile in profiles:
        if profile.slug == slug:
            return profile
    known = ", ".join(p.slug for p in profiles)
    raise ProfileRefused(f"There is no server profile '{slug[:64]}'. Profiles: {known}.")


def default_profile(profiles: Sequence[Profile] = PROFILES) -> Profile:
    return next((p for p in profiles if p.default), profiles[0])


def allowed(tiers: Iterable[str], profiles: Sequence[Profile] = PROFILES) -> list[Profile]:
    """The profiles that at least one of ``tiers`` allows, in list order."""
    have = set(tiers)
    return [p for p in profiles if p.open_to_all or p.tiers & have]


def check(profile: Profile, tiers: Iterable[str]) -> Profile:
    """``profile`` if one of ``tiers`` allows it; else :class:`ProfileRefused`, saying what would."""
    have = sorted(set(tiers))
    if profile.open_to_all or profile.tiers & set(have):
        return profile
    needed = ", ".join(sorted(profile.tiers))
    yours = ", ".join(have) or "none"
    raise ProfileRefused(
        f"The server profile '{profile.slug}' ({profile.display_name}) needs an organization on one of "
        f"the tiers {needed}; your organizations are on: {yours}. An operator grants a tier with "
        "`jupyter orchestrator set-tier`."
    )


def options_form(profiles: Sequence[Profile], chosen: str = "") -> str:
    """The spawn page's choice of profiles (HTML radio buttons, the default checked)."""
    pick = chosen or default_profile(profiles).slug
    rows = []
    for profile in profiles:
        checked = " checked" if profile.slug == pick else ""
        slug = html.escape(profile.slug, quote=True)
        rows.append(
            f'<div class="radio"><label><input type="radio" name="profile" value="{slug}"{checked}> '
            f"<strong>{html.escape(profile.display_name)}</strong>: {html.escape(profile.description)}"
            "</label></div>"
        )
    return '<div class="form-group" id="orchestrator-profiles">' + "".join(rows) + "</div>"


async def fetch_tiers(api_url: str, token: str, *, seconds: float = 10.0, **request: Any) -> set[str]:
    """The tiers of the organizations that the holder of ``token`` belongs to, asked of the API.

    ``api_url`` is the API's root (``.../orchestrator/api/v1``); ``request`` goes to
    tornado's ``HTTPRequest`` (e.g. ``ssl_options`` for internal TLS). Tornado's own client, not
    whichever the hub configured: the hub picks pycurl's when installed, which refuses ``ssl_options``.
    """
    client = SimpleAsyncHTTPClient()
    tiers: set[str] = set()
    cursor: str | None = None
    for _ in range(100):  # 100 pages of 100 organizations: more than anyone belongs to
        query = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        try:
            response = await client.fetch(
                HTTPRequest(
                    f"{api_url.rstrip('/')}/organizations?{urlencode(query)}",
                    headers={"Authorization": f"token {token}"},
                    request_timeout=seconds,
                    connect_timeout=seconds,
                    **request,
                )
            )
        except HTTPClientError as exc:
            raise TierLookupFailed(
                f"The Orchestrator API refused to list your organizations ({exc.code}); try again later."
            ) from exc
        except OSError as exc:
            raise TierLookupFailed(f"The Orchestrator API is unreachable ({exc}); try again later.") from exc
        page = json.loads(response.body)
        tiers.update(str(org["tier"]["name"]) for org in page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return tiers
