"""Hub side: who may start which server, and the team mode's spawner.

Loaded by the hub only (``hub_config/team.py``, ``hub_config/kubernetes.py``).

- :func:`user_tiers` asks the API, as the user, which tiers their
  organizations are on: the hub makes a short-lived token for the user, scoped
  to the Orchestrator service only, and forgets it afterwards.
- :class:`TeamSpawner` runs each user's server as a system account of its own
  (``jupyter-<name>``, created on first spawn with a private home; the hub
  runs as root), from a Python environment every account can read, with the
  profile's GPUs and advisory limits.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import re
import shutil
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid  # type: ignore[import-untyped]
from jupyterhub.utils import maybe_future  # type: ignore[import-untyped]
from tornado import web
from traitlets import Dict, Unicode, default

from ..engine.accounts import ensure_system_account
from . import profiles as P
from . import tls

__all__ = ["TeamSpawner", "ensure_system_account", "system_name"]

#: system account names: lowercase letters, digits, '-' and '_', at most 32 characters
_UNSAFE = re.compile(r"[^a-z0-9_-]")
_MAX_NAME = 32
TOKEN_SECONDS = 120
#: internal TLS: the CA file, beside a server's certificates, that its kernels check the API's certificate with
ORCHESTRATOR_CA = "orchestrator-ca.crt"


def system_name(hub_name: str, prefix: str = "jupyter-") -> str:
    """The system account of a hub user: ``prefix`` + the name, made safe and unique.

    A name that had to change (other characters, too long) gets a hash of the
    original, so two hub names never share an account; the prefix keeps hub
    names such as ``root`` away from existing accounts.
    """
    safe = _UNSAFE.sub("-", hub_name.lower())
    name = f"{prefix}{safe}"
    if safe != hub_name or len(name) > _MAX_NAME:
        digest = hashlib.sha256(hub_name.encode()).hexdigest()[:8]
        name = f"{prefix}{safe[: _MAX_NAME - len(prefix) - len(digest) - 1]}-{digest}"
    return name


def hub_groups(user: Any) -> set[str]:
    """Names of a hub user's groups (``user`` is JupyterHub's ``User``)."""
    return {group.name for group in getattr(user, "groups", [])}


async def user_tiers(
    user: Any, api_url: str, *, service: str = "orchestrator", ssl_options: ssl.SSLContext | None = None
) -> set[str]:
    """The tiers of a hub user's organizations, asked of the API with a token made for this question."""
    token = user.new_api_token(
        note="orchestrator: server profile check",
        expires_in=TOKEN_SECONDS,
        scopes=[f"access:services!service={service}"],
    )
    try:
        extra: dict[str, Any] = {"ssl_options": ssl_options} if ssl_options is not None else {}
        return await P.fetch_tiers(api_url, token, **extra)
    finally:
        _forget_token(user, token)


def _forget_token(user: Any, token: str) -> None:
    from jupyterhub import orm  # type: ignore[import-untyped]

    found = orm.APIToken.find(user.db, token)
    if found is not None:
        user.db.delete(found)
        user.db.commit()


async def chosen_profile(
    spawner: Any,
    api_url: str,
    profiles: Sequence[P.Profile] = P.PROFILES,
    *,
    service: str = "orchestrator",
    blocked_group: str = "",
    ssl_options: ssl.SSLContext | None = None,
) -> P.Profile:
    """The profile a spawn asks for (``user_options['profile']``), if the user may have it.

    Refusals are ``403`` errors whose message the hub shows on the spawn page
    and returns from its REST API.
    """
    if blocked_group and blocked_group in hub_groups(spawner.user):
        raise web.HTTPError(403, f"Your account is blocked (hub group '{blocked_group}'): no server can start.")
    slug = str((spawner.user_options or {}).get("profile") or P.default_profile(profiles).slug)
    try:
        profile = P.find(slug, profiles)
        if profile.open_to_all:
            return profile
        return P.check(profile, await user_tiers(spawner.user, api_url, service=service, ssl_options=ssl_options))
    except P.ProfileRefused as exc:
        raise web.HTTPError(403, str(exc)) from exc


def refuse_profiles_above_tier(
    api_url: str,
    profiles: Sequence[P.Profile] = P.PROFILES,
    *,
    service: str = "orchestrator",
    blocked_group: str = "",
) -> Callable[[Any], Any]:
    """A ``Spawner.pre_spawn_hook`` that refuses a profile none of the user's tiers allows."""

    async def hook(spawner: Any) -> None:
        await chosen_profile(spawner, api_url, profiles, service=service, blocked_group=blocked_group)

    return hook


class TeamSpawner(LocalProcessSpawner):  # type: ignore[misc]
    """Each hub user's server as their own system account, with a profile their tiers allow."""

    orchestrator_api_url = Unicode(
        help="The Orchestrator API's root as the hub reaches it (.../services/orchestrator/orchestrator/api/v1)."
    ).tag(config=True)
    orchestrator_service = Unicode("orchestrator", help="The hub service name of the Orchestrator API.").tag(
        config=True
    )
    blocked_group = Unicode("blocked", help="Members of this hub group cannot start servers.").tag(config=True)
    account_prefix = Unicode("jupyter-", help="Prefix of the system accounts of hub users.").tag(config=True)
    home_root = Unicode("/home", help="Where the accounts' home directories are made.").tag(config=True)
    account_shell = Unicode("/bin/bash", help="Login shell of new accounts (JupyterLab's terminals use it).").tag(
        config=True
    )
    gpu_devices = Unicode("0", help="CUDA_VISIBLE_DEVICES for a GPU profile ('' for the others).").tag(config=True)
    notebooks = Dict(
        Unicode(),
        help="""Notebooks copied into each user's home at every start: {path in the home: source file}
        (the dashboard that the 'dashboard' service opens with Voila).""",
    ).tag(config=True)
    env_prefix = Unicode(
        help="""The Python environment users' servers run from (its bin/ has jupyterhub-singleuser).
        Every account must be able to read it: not under /root."""
    ).tag(config=True)
    certs_root = Unicode(
        "/srv/orchestrator/certs",
        help="""Internal TLS: each server's key and certificates go in <certs_root>/users/<account>,
        readable by that account only (a folder of root's, not the account's home: see tls.install_certs).""",
    ).tag(config=True)

    @default("env_prefix")
    def _default_env_prefix(self) -> str:
        import sys

        return sys.prefix

    @default("env_keep")
    def _default_env_keep(self) -> list[str]:
        # nothing of the hub's own environment (PATH, PYTHONPATH, VIRTUAL_ENV) leaks into users' servers
        return ["LANG", "LC_ALL"]

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        return [str(Path(self.env_prefix) / "bin" / "jupyterhub-singleuser")]

    #: the profile of the server being started (set before it starts)
    profile: P.Profile | None = None

    @property
    def account(self) -> str:
        return system_name(self.user.name, self.account_prefix)

    @default("options_from_form")
    def _default_options_from_form(self) -> Callable[[dict[str, list[str]]], dict[str, str]]:
        def from_form(formdata: dict[str, list[str]]) -> dict[str, str]:
            return {"profile": (formdata.get("profile") or [""])[0]}

        return from_form

    @default("options_form")
    def _default_options_form(self) -> Callable[[Any], Any]:
        async def form(spawner: TeamSpawner) -> str:
            return await spawner.profiles_form()

        return form

    async def profiles_form(self) -> str:
        """The profiles this user may start, as the spawn page's form (only those their tiers allow)."""
        if all(p.open_to_all for p in P.PROFILES):
            return P.options_form(P.PROFILES)
        try:
            tiers = await user_tiers(
                self.user, self.orchestrator_api_url, service=self.orchestrator_service, ssl_options=self.hub_ssl
            )
        except P.TierLookupFailed as exc:
            self.log.warning("tiers of %s unknown (%s): offering the profiles every tier allows", self.user.name, exc)
            tiers = set()
        return P.options_form(P.allowed(tiers))

    # ---- the system account -------------------------------------------------

    def ensure_account(self) -> pwd.struct_passwd:
        """The user's system account, created on first spawn (private home, own group), with fresh copies
        of the :attr:`notebooks`."""
        entry = ensure_system_account(
            self.account,
            Path(self.home_root) / self.account,
            login_shell=self.account_shell,
            comment=f"JupyterHub user {self.user.name[:64]}",
        )
        for relative, source in self.notebooks.items():
            target = Path(entry.pw_dir) / relative
            for folder in reversed([*target.relative_to(entry.pw_dir).parents][:-1]):
                (Path(entry.pw_dir) / folder).mkdir(exist_ok=True)
                os.chown(Path(entry.pw_dir) / folder, entry.pw_uid, entry.pw_gid)
            shutil.copyfile(source, target)
            os.chown(target, entry.pw_uid, entry.pw_gid)
        return entry

    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        return set_user_setuid(self.account)  # type: ignore[no-any-return]

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        entry = pwd.getpwnam(self.account)
        env.update(USER=self.account, HOME=entry.pw_dir, SHELL=entry.pw_shell or self.account_shell)
        return env

    async def move_certs(self, paths: dict[str, str]) -> dict[str, str]:
        """Internal TLS: the server's key and certificates, readable by its account only
        (:func:`.tls.install_certs`), with the CA of the services' certificates beside them
        (``ORCHESTRATOR_SSL_CA``: the user's kernels check the Orchestrator service's certificate)."""
        folder = Path(self.certs_root) / "users" / self.account
        services_ca = {ORCHESTRATOR_CA: tls.authority_cert(self.internal_certs_location)}
        return await asyncio.to_thread(tls.install_certs, paths, folder, self.account, copies=services_ca)

    @property
    def hub_ssl(self) -> ssl.SSLContext | None:
        """The hub's client certificate and CAs when internal TLS is on: the API checks them."""
        return tls.hub_client_context(self.user.settings)

    # ---- start ----------------------------------------------------------------

    async def run_pre_spawn_hook(self) -> None:
        """Before the hub makes internal TLS certificates or starts anything: the profile and the account."""
        profile = await chosen_profile(
            self,
            self.orchestrator_api_url,
            service=self.orchestrator_service,
            blocked_group=self.blocked_group,
            ssl_options=self.hub_ssl,
        )
        await asyncio.to_thread(self.ensure_account)
        self.cpu_limit = float(profile.cpu_limit)
        self.mem_limit = profile.mem_limit
        self.profile = profile
        self.log.info("starting %s's server as %s, profile %s", self.user.name, self.account, profile.slug)
        if self.pre_spawn_hook:
            await maybe_future(self.pre_spawn_hook(self))

    def get_env(self) -> dict[str, str]:
        env: dict[str, str] = super().get_env()
        env["PATH"] = os.pathsep.join([str(Path(self.env_prefix) / "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
        if self.profile is not None:
            gpus = self.gpu_devices if self.profile.gpus else ""
            env.update(
                ORCHESTRATOR_PROFILE=self.profile.slug,
                CUDA_VISIBLE_DEVICES=gpus,
                NVIDIA_VISIBLE_DEVICES=gpus or "void",
            )
        if self.cert_paths:
            env["ORCHESTRATOR_SSL_CA"] = str(Path(self.cert_paths["cafile"]).with_name(ORCHESTRATOR_CA))
        return env


def home_elsewhere(name: str, home: Path) -> Path | None:
    """The home of the existing account ``name`` when it is another folder that still exists: the
    account belongs to another installation (a second team directory on this machine), which
    ensure_system_account would otherwise silently move. None: no such account, or free to use."""
    try:
        current = Path(pwd.getpwnam(name).pw_dir)
    except KeyError:
        return None
    return current if current != home and current.exists() else None
