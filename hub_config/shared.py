# ruff: noqa: F821 - `c` is the configuration object JupyterHub passes to its config files
"""What every Orchestrator hub has, whatever runs users' servers.

Loaded by jupyterhub_config.py before the mode's own file. Sets:

- how people log in: NativeAuthenticator (sign-up and hub-stored bcrypt
  passwords, optional admin approval, password change, lockout after repeated
  failures), or GenericOAuthenticator with any OpenID Connect provider when
  OAUTH_CLIENT_ID is set (docs/deploy/oauth.md);
- the admins (ORCHESTRATOR_HUB_ADMINS);
- the roles: users, their servers and kernels reach the Orchestrator service
  with their own token; the idle culler may stop idle servers.

Every setting is an environment variable, listed in .env.example.
"""

import os
import sys


def env(name, default=""):
    return os.environ.get(name) or default


def env_flag(name, default):
    return env(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


SERVICE = env("ORCHESTRATOR_HUB_SERVICE", "orchestrator")
DASHBOARD = "dashboard"
BLOCKED_GROUP = env("ORCHESTRATOR_HUB_BLOCKED_GROUP", "blocked")

# ---- who may log in -----------------------------------------------------------

c.Authenticator.admin_users = set(env_list("ORCHESTRATOR_HUB_ADMINS"))
# Logout ends the hub session and revokes the services' logins made in it
# (users' servers keep running; the idle culler stops them).
c.JupyterHub.shutdown_on_logout = False
c.Authenticator.refresh_pre_spawn = True
c.Authenticator.auth_refresh_age = int(env("OAUTH_REFRESH_AGE", "300"))

if env("OAUTH_CLIENT_ID"):
    from oauthenticator.generic import GenericOAuthenticator

    c.JupyterHub.authenticator_class = GenericOAuthenticator
    c.GenericOAuthenticator.client_id = env("OAUTH_CLIENT_ID")
    c.GenericOAuthenticator.client_secret = env("OAUTH_CLIENT_SECRET")
    c.GenericOAuthenticator.oauth_callback_url = env("OAUTH_CALLBACK_URL")
    c.GenericOAuthenticator.authorize_url = env("OAUTH_AUTHORIZE_URL")
    c.GenericOAuthenticator.token_url = env("OAUTH_TOKEN_URL")
    c.GenericOAuthenticator.userdata_url = env("OAUTH_USERDATA_URL")
    c.GenericOAuthenticator.logout_redirect_url = env("OAUTH_LOGOUT_URL")
    c.GenericOAuthenticator.scope = env("OAUTH_SCOPES", "openid profile email").split()
    c.GenericOAuthenticator.username_claim = env("OAUTH_USERNAME_CLAIM", "preferred_username")
    c.GenericOAuthenticator.login_service = env("OAUTH_LOGIN_SERVICE", "your organization's login")
    c.GenericOAuthenticator.enable_pkce = True
    if env("OAUTH_GROUPS_CLAIM"):
        # the provider's groups become hub groups (e.g. "blocked", "org:<slug>")
        c.GenericOAuthenticator.manage_groups = True
        c.GenericOAuthenticator.auth_state_groups_key = f"oauth_user.{env('OAUTH_GROUPS_CLAIM')}"
        c.GenericOAuthenticator.allowed_groups = set(env_list("OAUTH_ALLOWED_GROUPS"))
        c.GenericOAuthenticator.admin_groups = set(env_list("OAUTH_ADMIN_GROUPS"))
    c.GenericOAuthenticator.allow_all = not env_list("OAUTH_ALLOWED_GROUPS")
    # Refresh the provider's tokens: kept encrypted in the hub's database
    # (JUPYTERHUB_CRYPT_KEY), checked every OAUTH_REFRESH_AGE seconds and before each spawn.
    c.GenericOAuthenticator.enable_auth_state = bool(env("JUPYTERHUB_CRYPT_KEY"))
else:
    import nativeauthenticator

    from orchestrator_ext.hub.native import TEMPLATES, TeamAuthenticator

    # NativeAuthenticator, with a login page that works on JupyterHub 6 too
    c.JupyterHub.authenticator_class = TeamAuthenticator
    # NativeAuthenticator lets in only the accounts it stores (and approved, see open_signup)
    c.NativeAuthenticator.allow_all = True
    c.NativeAuthenticator.enable_signup = env_flag("ORCHESTRATOR_HUB_SIGNUP", True)
    # false: an admin approves each new account at /hub/authorize
    c.NativeAuthenticator.open_signup = not env_flag("ORCHESTRATOR_HUB_APPROVAL", True)
    c.NativeAuthenticator.minimum_password_length = int(env("ORCHESTRATOR_HUB_MIN_PASSWORD_LENGTH", "10"))
    c.NativeAuthenticator.check_common_password = True
    c.NativeAuthenticator.allowed_failed_logins = int(env("ORCHESTRATOR_HUB_LOGIN_ATTEMPTS", "5"))
    c.NativeAuthenticator.seconds_before_next_try = int(env("ORCHESTRATOR_HUB_LOCKOUT_SECONDS", "600"))
    c.NativeAuthenticator.ask_email_on_signup = False
    # the first admin is made when the hub starts, with the operator's password, before the port
    # opens; nobody becomes an admin by signing up under an admin's name (native.py)
    c.TeamAuthenticator.first_admin = next(iter(env_list("ORCHESTRATOR_HUB_ADMINS")), "")
    c.TeamAuthenticator.first_admin_password = env("ORCHESTRATOR_HUB_ADMIN_PASSWORD")
    c.TeamAuthenticator.first_admin_password_file = env("ORCHESTRATOR_HUB_ADMIN_PASSWORD_FILE")
    # its sign-up, change-password and authorize pages (our authorize page first: approvals POST)
    c.JupyterHub.template_paths = [TEMPLATES, os.path.join(os.path.dirname(nativeauthenticator.__file__), "templates")]

# ---- roles ----------------------------------------------------------------------

ACCESS = f"access:services!service={SERVICE}"
c.JupyterHub.load_roles = [
    {
        "name": "user",
        "description": "Standard user privileges, the Orchestrator and its dashboard",
        "scopes": ["self", ACCESS, f"read:services!service={SERVICE}", f"access:services!service={DASHBOARD}"],
    },
    {
        "name": "server",
        "description": "Notebook servers and kernels: post activity, reach the Orchestrator as their owner",
        "scopes": ["users:activity!user", "access:servers!server", ACCESS, f"read:services!service={SERVICE}"],
    },
    {
        "name": "idle-culler",
        "description": "Stop idle servers",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    },
]

# ---- the idle culler ------------------------------------------------------------

CULLER = [
    sys.executable,
    "-m",
    "jupyterhub_idle_culler",
    f"--timeout={int(env('ORCHESTRATOR_HUB_IDLE_TIMEOUT', '3600'))}",
    f"--cull-every={int(env('ORCHESTRATOR_HUB_CULL_EVERY', '300'))}",
]
if env_flag("ORCHESTRATOR_HUB_INTERNAL_SSL", False):
    # internal TLS (the team mode, docs/deploy/tls.md): the culler ignores the JUPYTERHUB_SSL_* the
    # hub gives services; it reads the hub's own certificate from the hub's store instead (it runs as
    # root, as the hub does), where team.py puts it
    STORE = os.path.join(env("ORCHESTRATOR_TEAM_DIR", "/srv/orchestrator"), "hub", "internal-ssl")
    CULLER += ["--ssl-enabled=True", f"--internal-certs-location={STORE}"]
c.JupyterHub.services = [{"name": "idle-culler", "command": CULLER}]
