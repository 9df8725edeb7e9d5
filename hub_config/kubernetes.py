# ruff: noqa: F821 - `c` is the configuration object JupyterHub passes to its config files
"""What the chart adds to the official JupyterHub chart's hub for KubeSpawner (cluster mode).

z2jh writes the hub's configuration from helm/values.yaml (the authenticator,
the services and roles, the culler, ``singleuser.profileList``); this file,
run after it (``hub.extraConfig``, with orchestrator installed in the hub
image), makes the profiles follow the organizations' tiers as in the team
mode: the spawn page offers only the profiles the user's tiers allow, and a
spawn that asks for another one is refused with a clear message. The
profiles' slugs are those of orchestrator_ext.hub.profiles.PROFILES (the tests
check helm/values.yaml against them).
"""

import os

from orchestrator_ext.hub import profiles
from orchestrator_ext.hub.spawner import refuse_profiles_above_tier, user_tiers

SERVICE = os.environ.get("ORCHESTRATOR_HUB_SERVICE") or "orchestrator"
# the hub reaches the API directly (the chart's NetworkPolicy admits the hub)
API_URL = (
    os.environ.get("ORCHESTRATOR_API_URL") or f"http://orchestrator-api:8888/services/{SERVICE}/orchestrator/api/v1"
)
BLOCKED_GROUP = os.environ.get("ORCHESTRATOR_HUB_BLOCKED_GROUP") or "blocked"

CHART_PROFILES = list(c.KubeSpawner.profile_list) if "profile_list" in c.KubeSpawner else []
_unknown = {p.get("slug") for p in CHART_PROFILES} - {p.slug for p in profiles.PROFILES}
if _unknown:
    raise ValueError(f"singleuser.profileList has profiles the tiers do not know: {sorted(map(str, _unknown))}")


async def profile_list(spawner):
    """The chart's profiles that the user's organizations' tiers allow."""
    try:
        tiers = await user_tiers(spawner.user, API_URL, service=SERVICE)
    except profiles.TierLookupFailed as exc:
        spawner.log.warning("tiers of %s unknown (%s): offering the profiles every tier allows", spawner.user.name, exc)
        tiers = set()
    allowed = {p.slug for p in profiles.allowed(tiers)}
    return [p for p in CHART_PROFILES if p.get("slug") in allowed]


if CHART_PROFILES:
    c.KubeSpawner.profile_list = profile_list
c.KubeSpawner.pre_spawn_hook = refuse_profiles_above_tier(API_URL, service=SERVICE, blocked_group=BLOCKED_GROUP)
