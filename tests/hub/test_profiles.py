"""Server profiles and tiers, the hub side (no hub needed): which profiles a tier allows, the
refusals' messages, the question the hub asks the API, the account names, and that the team mode,
hub_config/kubernetes.py and the chart's helm/values.yaml list the same profiles."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from tornado import web
from traitlets.config import Config

from orchestrator_ext.hub import profiles as P
from orchestrator_ext.hub import spawner as S
from tests.hub.fake_http import Answer, Seen, fake_server
from tests.hub.kernels import run_async

REPOSITORY = Path(__file__).resolve().parents[2]
HELM_PROFILES = yaml.safe_load((REPOSITORY / "helm" / "values.yaml").read_text())["jupyterhub"]["singleuser"][
    "profileList"
]


def slugs(profiles: list[P.Profile]) -> list[str]:
    return [p.slug for p in profiles]


@pytest.mark.parametrize(
    ("tiers", "expected"),
    [
        (set(), ["cpu-small"]),
        ({"free"}, ["cpu-small"]),
        ({"team"}, ["cpu-small", "cpu-large"]),
        ({"enterprise"}, ["cpu-small", "cpu-large"]),
        ({"gpu-small"}, ["cpu-small", "cpu-large", "gpu"]),
        ({"free", "gpu-large"}, ["cpu-small", "cpu-large", "gpu"]),
    ],
)
def test_each_tier_allows_its_profiles(tiers: set[str], expected: list[str]) -> None:
    assert slugs(P.allowed(tiers)) == expected


def test_a_profile_above_the_tier_is_refused_with_what_would_allow_it() -> None:
    gpu = P.find("gpu")
    with pytest.raises(P.ProfileRefused) as refused:
        P.check(gpu, {"team", "free"})
    assert str(refused.value) == (
        "The server profile 'gpu' (GPU) needs an organization on one of the tiers gpu-large, gpu-small; "
        "your organizations are on: free, team. An operator grants a tier with `jupyter orchestrator set-tier`."
    )
    assert P.check(gpu, {"gpu-small"}) is gpu
    with pytest.raises(P.ProfileRefused, match="your organizations are on: none"):
        P.check(gpu, set())
    with pytest.raises(P.ProfileRefused, match=r"no server profile 'tpu'\. Profiles: cpu-small, cpu-large, gpu"):
        P.find("tpu")


def test_the_spawn_form_lists_the_profiles_escaped_with_the_default_checked() -> None:
    odd = P.Profile("x<y", "A & B", 'say "hi"', P.ALL_TIERS, 1, "1G")
    form = P.options_form([P.find("cpu-small"), odd])
    assert 'value="cpu-small" checked' in form
    assert 'value="x&lt;y"' in form
    assert "A &amp; B" in form
    assert "say &quot;hi&quot;" in form
    assert 'value="x&lt;y" checked' in P.options_form([P.find("cpu-small"), odd], chosen="x<y")


def test_the_team_mode_the_cluster_mode_and_the_chart_list_the_same_profiles() -> None:
    assert [p["slug"] for p in HELM_PROFILES] == slugs(list(P.PROFILES))
    for chart, ours in zip(HELM_PROFILES, P.PROFILES, strict=True):
        override = chart["kubespawner_override"]
        assert chart["display_name"] == ours.display_name
        assert float(override["cpu_limit"]) == ours.cpu_limit
        assert override["mem_limit"] == ours.mem_limit
        gpus = int(override.get("extra_resource_limits", {}).get("nvidia.com/gpu", 0))
        assert gpus == ours.gpus
        assert bool(chart.get("default")) == ours.default


# ---- asking the API for the user's tiers -------------------------------------------------------------


def organizations(pages: dict[str, tuple[list[str], str | None]]) -> Any:
    def answer(seen: Seen) -> Answer:
        tiers, following = pages[(seen.query.get("cursor") or [""])[0]]
        items = [{"id": f"o{n}", "tier": {"name": tier}} for n, tier in enumerate(tiers)]
        return Answer(body={"items": items, "next_cursor": following})

    return answer


def test_the_hub_asks_the_api_for_every_page_of_organizations() -> None:
    with fake_server() as server:
        server.on("GET", "/api/organizations", organizations({"": (["free"], "p2"), "p2": (["gpu-small"], None)}))
        assert run_async(lambda: P.fetch_tiers(f"{server.url}/api", "user-token")) == {"free", "gpu-small"}
        assert [s.headers["Authorization"] for s in server.seen] == ["token user-token"] * 2


def test_an_api_that_refuses_or_does_not_answer_is_a_lookup_failure() -> None:
    with fake_server() as server:
        server.on("GET", "/api/organizations", Answer(403, {"status": 403}))
        with pytest.raises(P.TierLookupFailed, match=r"refused to list your organizations \(403\)"):
            run_async(lambda: P.fetch_tiers(f"{server.url}/api", "t"))
    with pytest.raises(P.TierLookupFailed, match="unreachable"):
        run_async(lambda: P.fetch_tiers("http://127.0.0.1:9/api", "t", seconds=2))


class FakeUser:
    """JupyterHub's User as the hub-side code uses it: a name, groups, and short-lived tokens."""

    def __init__(self, name: str, groups: tuple[str, ...] = ()) -> None:
        self.name = name
        self.groups = [SimpleNamespace(name=g) for g in groups]
        self.made: list[dict[str, Any]] = []

    def new_api_token(self, **kwargs: Any) -> str:
        self.made.append(kwargs)
        return "short-lived"


def spawner_for(user: FakeUser, profile: str | None) -> Any:
    return SimpleNamespace(user=user, user_options={"profile": profile} if profile else {})


@pytest.fixture
def tiers_answer(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    state: dict[str, Any] = {"tiers": {"free"}, "asked": 0}

    async def fake_tiers(user: Any, api_url: str, **kwargs: Any) -> set[str]:
        state["asked"] += 1
        if isinstance(state["tiers"], Exception):
            raise state["tiers"]
        return set(state["tiers"])

    monkeypatch.setattr(S, "user_tiers", fake_tiers)
    return state


def test_a_spawn_gets_its_profile_only_if_a_tier_allows_it(tiers_answer: dict[str, Any]) -> None:
    user = FakeUser("ada")
    # the default and every-tier profiles need no question
    assert run_async(lambda: S.chosen_profile(spawner_for(user, None), "http://api")).slug == "cpu-small"
    assert tiers_answer["asked"] == 0
    with pytest.raises(web.HTTPError) as refused:
        run_async(lambda: S.chosen_profile(spawner_for(user, "gpu"), "http://api"))
    assert refused.value.status_code == 403
    assert "needs an organization" in str(refused.value.log_message)
    tiers_answer["tiers"] = {"gpu-large"}
    assert run_async(lambda: S.chosen_profile(spawner_for(user, "gpu"), "http://api")).slug == "gpu"
    tiers_answer["tiers"] = P.TierLookupFailed("The Orchestrator API is unreachable")
    with pytest.raises(web.HTTPError, match="unreachable"):
        run_async(lambda: S.chosen_profile(spawner_for(user, "cpu-large"), "http://api"))


def test_a_blocked_user_starts_nothing(tiers_answer: dict[str, Any]) -> None:
    blocked = FakeUser("bob", groups=("blocked",))
    with pytest.raises(web.HTTPError, match="blocked"):
        run_async(lambda: S.chosen_profile(spawner_for(blocked, None), "http://api", blocked_group="blocked"))
    hook = S.refuse_profiles_above_tier("http://api", blocked_group="blocked")
    with pytest.raises(web.HTTPError, match="blocked"):
        run_async(lambda: hook(spawner_for(blocked, None)))


def test_the_token_made_for_the_question_is_scoped_and_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    forgotten: list[str] = []
    monkeypatch.setattr(S, "_forget_token", lambda user, token: forgotten.append(token))
    user = FakeUser("ada")
    with fake_server() as server:
        server.on("GET", "/api/organizations", organizations({"": (["team"], None)}))
        assert run_async(lambda: S.user_tiers(user, f"{server.url}/api")) == {"team"}
        server.on("GET", "/api/organizations", Answer(500, {}))
        with pytest.raises(P.TierLookupFailed):
            run_async(lambda: S.user_tiers(user, f"{server.url}/api"))
    assert user.made[0]["scopes"] == ["access:services!service=orchestrator"]
    assert user.made[0]["expires_in"] == S.TOKEN_SECONDS
    assert forgotten == ["short-lived", "short-lived"]  # even when the question failed


# ---- system accounts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hub_name", "expected"),
    [("ada", "jupyter-ada"), ("bob-2_x", "jupyter-bob-2_x")],
)
def test_plain_hub_names_keep_their_name(hub_name: str, expected: str) -> None:
    assert S.system_name(hub_name) == expected


def test_other_hub_names_get_a_safe_unique_account() -> None:
    names = ["root", "Root", "a.b@example.org", "a-b-example-org", "x" * 60, "x" * 61, "émile"]
    accounts = [S.system_name(n) for n in names]
    assert accounts[0] == "jupyter-root"  # never the superuser's account
    assert len(set(accounts)) == len(accounts)
    for account in accounts:
        assert len(account) <= 32
        assert account.startswith("jupyter-")
        assert all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in account)


# ---- hub_config/kubernetes.py ----------------------------------------------------------------------------


def load_kubernetes_config(profiles: list[dict[str, Any]]) -> tuple[Config, dict[str, Any]]:
    config = Config()
    config.KubeSpawner.profile_list = profiles
    namespace: dict[str, Any] = {"c": config}
    path = REPOSITORY / "hub_config" / "kubernetes.py"
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return config, namespace


def test_kubernetes_offers_the_charts_profiles_that_the_tiers_allow() -> None:
    config, namespace = load_kubernetes_config(HELM_PROFILES)
    offered = config.KubeSpawner.profile_list
    assert callable(offered)
    assert callable(config.KubeSpawner.pre_spawn_hook)
    answers: dict[str, Any] = {"tiers": {"team"}}

    async def fake_tiers(user: Any, api_url: str, **kwargs: Any) -> set[str]:
        if isinstance(answers["tiers"], Exception):
            raise answers["tiers"]
        return set(answers["tiers"])

    namespace["user_tiers"] = fake_tiers
    spawner = SimpleNamespace(user=FakeUser("ada"), log=SimpleNamespace(warning=lambda *a: None))
    assert [p["slug"] for p in run_async(lambda: offered(spawner))] == ["cpu-small", "cpu-large"]
    answers["tiers"] = {"gpu-small"}
    gpu = run_async(lambda: offered(spawner))[-1]
    assert gpu["kubespawner_override"]["extra_resource_limits"] == {"nvidia.com/gpu": "1"}
    answers["tiers"] = P.TierLookupFailed("down")
    assert [p["slug"] for p in run_async(lambda: offered(spawner))] == ["cpu-small"]


def test_kubernetes_refuses_a_chart_profile_the_tiers_do_not_know() -> None:
    with pytest.raises(ValueError, match="tpu"):
        load_kubernetes_config([*HELM_PROFILES, {"slug": "tpu", "display_name": "TPU"}])
