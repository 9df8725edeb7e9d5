# ruff: noqa: F821 - `c` is the configuration object JupyterHub passes to its config files
"""Team mode on one machine: users' servers as local processes, each as the user's own account.

Loaded by jupyterhub_config.py after shared.py. The hub runs as root: it makes
a system account for each hub user on their first spawn (``jupyter-<name>``,
a private home) and starts their server as that account, from a Python
environment every account can read (ORCHESTRATOR_TEAM_ENV). The Orchestrator
API runs as a service the hub starts, under an account of its own; a worker
service (root) starts each run as its organization's own account; its data
(the embedded PostgreSQL, the key ring) and the hub's (its database, cookie
secret) sit in folders only their owner can open. docs/deploy/team.md tells the
whole story; every setting is in .env.example.
"""

import os
import pwd
import sys
from pathlib import Path

from orchestrator_ext.hub import tls
from orchestrator_ext.hub.dashboard import NOTEBOOK
from orchestrator_ext.hub.spawner import TeamSpawner, ensure_system_account, home_elsewhere
from orchestrator_ext.n8n.install import installation
from orchestrator_ext.n8n.instances import service_environment


def env(name, default=""):
    return os.environ.get(name) or default


def env_flag(name, default):
    return env(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def private_dir(path, owner="root"):
    """A folder only ``owner`` can open (mode 0700)."""
    path.mkdir(parents=True, exist_ok=True)
    entry = pwd.getpwnam(owner)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(0o700)
    return path


if os.geteuid() != 0:
    sys.exit("The team mode runs as root: it starts each user's server as that user's own system account.")

SERVICE = env("ORCHESTRATOR_HUB_SERVICE", "orchestrator")
BLOCKED_GROUP = env("ORCHESTRATOR_HUB_BLOCKED_GROUP", "blocked")
REPOSITORY = Path(__file__).resolve().parent.parent
TEAM_DIR = Path(env("ORCHESTRATOR_TEAM_DIR", "/srv/orchestrator"))
ENV_PREFIX = Path(env("ORCHESTRATOR_TEAM_ENV", sys.prefix))
SERVICE_PORT = int(env("ORCHESTRATOR_SERVICE_PORT", "8890"))
DASHBOARD_PORT = int(env("ORCHESTRATOR_DASHBOARD_PORT", "8891"))
SERVICE_USER = env("ORCHESTRATOR_SERVICE_USER", "orchestrator")
BIN = ENV_PREFIX / "bin"
PATH = os.pathsep.join([str(BIN), "/usr/local/bin", "/usr/bin", "/bin"])

if str(ENV_PREFIX).startswith("/root"):
    sys.exit(f"ORCHESTRATOR_TEAM_ENV={ENV_PREFIX} is under /root, which users' accounts cannot read.")

TEAM_DIR.mkdir(parents=True, exist_ok=True)
TEAM_DIR.chmod(0o755)

# ---- the hub's own state: root only ------------------------------------------------

HUB_DIR = private_dir(TEAM_DIR / "hub")
c.JupyterHub.db_url = f"sqlite:///{HUB_DIR / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(HUB_DIR / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = str(HUB_DIR / "jupyterhub-proxy.pid")
# internal TLS: the hub's CAs and certificates (shared.py's idle culler reads them from here too)
c.JupyterHub.internal_certs_location = str(HUB_DIR / "internal-ssl")
c.JupyterHub.bind_url = env("ORCHESTRATOR_HUB_BIND_URL", "http://:8000")
# the first admin (shared.py, orchestrator_ext/hub/native.py): made before the port opens, with the
# operator's password, or one generated into this root-only file when none is given
if not env("ORCHESTRATOR_HUB_ADMIN_PASSWORD") and not env("ORCHESTRATOR_HUB_ADMIN_PASSWORD_FILE"):
    c.TeamAuthenticator.first_admin_password_file = str(HUB_DIR / "first-admin-password")

# The proxy: the PyPI configurable-http-proxy installed beside the hub (found even when the
# hub's environment is not on PATH, as when run as /opt/orchestrator/bin/jupyterhub), else the
# one on PATH, or another command, e.g. the npm one, which TLS needs (the PyPI one has none).
# The PyPI one runs through orchestrator_ext.hub.proxy, which keeps query strings (?token=...) out
# of its access log, that is out of the hub's log.
HUB_PROXY = Path(sys.executable).parent / "configurable-http-proxy"
if env("ORCHESTRATOR_HUB_PROXY_COMMAND"):
    c.ConfigurableHTTPProxy.command = [env("ORCHESTRATOR_HUB_PROXY_COMMAND")]
elif HUB_PROXY.exists():
    c.ConfigurableHTTPProxy.command = [sys.executable, "-m", "orchestrator_ext.hub.proxy"]

# TLS (docs/deploy/tls.md): the public address over https, and optionally every
# connection between the hub, the proxy, the services and users' servers.
if env("ORCHESTRATOR_HUB_SSL_CERT"):
    c.JupyterHub.ssl_cert = env("ORCHESTRATOR_HUB_SSL_CERT")
    c.JupyterHub.ssl_key = env("ORCHESTRATOR_HUB_SSL_KEY")
c.JupyterHub.internal_ssl = env_flag("ORCHESTRATOR_HUB_INTERNAL_SSL", False)
SCHEME = "https" if c.JupyterHub.internal_ssl else "http"
# the proxy's REST API (the hub's routes), on the loopback: another port for a second hub on the machine
if env("ORCHESTRATOR_HUB_PROXY_API_PORT"):
    c.ConfigurableHTTPProxy.api_url = f"{SCHEME}://127.0.0.1:{int(env('ORCHESTRATOR_HUB_PROXY_API_PORT'))}"
# internal TLS: each service's and server's key and certificates, in a folder of its account's
# (certs/services/<name>, certs/users/<account>) inside this one, root's
CERTS_DIR = TEAM_DIR / "certs"

# ---- the Orchestrator API: a hub service under its own account ----------------------

SERVICE_DIR = TEAM_DIR / "service"
if SERVICE_USER != "root" and home_elsewhere(SERVICE_USER, SERVICE_DIR):
    sys.exit(
        f"The account {SERVICE_USER!r} is the Orchestrator service of another team directory (its home is "
        f"{home_elsewhere(SERVICE_USER, SERVICE_DIR)}); this hub's is {TEAM_DIR}. Give this hub an account of "
        f"its own (ORCHESTRATOR_SERVICE_USER), or, if that directory moved here, run "
        f"`usermod --home {SERVICE_DIR} {SERVICE_USER}` first."
    )
if SERVICE_USER != "root":  # root: the service runs as the hub does (not recommended)
    ensure_system_account(SERVICE_USER, SERVICE_DIR, login_shell="/usr/sbin/nologin", comment="Orchestrator API")
for sub in ("data", "files", "jupyter", "run"):
    private_dir(SERVICE_DIR / sub, SERVICE_USER)
DATA_DIR = SERVICE_DIR / "data"
# the embedded PostgreSQL listens here too (0755, the service's): runs, under their organizations' accounts,
# cannot enter DATA_DIR, and reach their organization's runs' database (a role and database of its own, with
# a password only its runs get: orchestrator_ext/engine/runs_state.py) by this socket
RUNS_DB_DIR = TEAM_DIR / "runs-db"
RUNS_DB_DIR.mkdir(exist_ok=True)
os.chown(RUNS_DB_DIR, pwd.getpwnam(SERVICE_USER).pw_uid, pwd.getpwnam(SERVICE_USER).pw_gid)
RUNS_DB_DIR.chmod(0o755)
if len(str(DATA_DIR / "pgdata" / ".s.PGSQL.5432")) > 100 and not env("ORCHESTRATOR_DATABASE_URL"):
    # longer, and the embedded PostgreSQL puts its socket in a shared folder any account can reach
    sys.exit(f"ORCHESTRATOR_TEAM_DIR={TEAM_DIR} is too long a path for PostgreSQL's socket: choose a shorter one.")

SECRETS = (
    "ORCHESTRATOR_DATABASE_URL",
    "ORCHESTRATOR_DATABASE_ADMIN_URL",
    "ORCHESTRATOR_ENCRYPTION_KEYS",
    "ORCHESTRATOR_RUNS_DATABASE_URL",
    "ORCHESTRATOR_RUNS_DATABASE_ADMIN_URL",
)
SERVICE_ENV = {
    "PATH": PATH,
    "HOME": str(SERVICE_DIR),
    "ORCHESTRATOR_DATA_DIR": str(DATA_DIR),
    "JUPYTER_PLATFORM_DIRS": "1",
    "JUPYTER_CONFIG_DIR": str(SERVICE_DIR / "jupyter" / "config"),
    "JUPYTER_DATA_DIR": str(SERVICE_DIR / "jupyter" / "data"),
    "JUPYTER_RUNTIME_DIR": str(SERVICE_DIR / "jupyter" / "runtime"),
    "XDG_RUNTIME_DIR": str(SERVICE_DIR / "run"),
    "ORCHESTRATOR_RUNS_SOCKET_DIR": str(RUNS_DB_DIR),
    **{name: os.environ[name] for name in SECRETS if os.environ.get(name)},
}
OFF = ("jupyterlab", "voila", "jupyter_lsp", "notebook", "notebook_shim", "jupyter_server_terminals")
c.JupyterHub.services.append(
    {
        "name": SERVICE,
        "url": f"{SCHEME}://127.0.0.1:{SERVICE_PORT}",
        "user": SERVICE_USER,
        "cwd": str(SERVICE_DIR),
        "command": [
            str(BIN / "jupyter-orchestrator"),
            "--ServerApp.jpserver_extensions=jupyterhub=True",
            *(f"--ServerApp.jpserver_extensions={name}=False" for name in OFF),
            "--ServerApp.terminals_enabled=False",
            f"--ServerApp.root_dir={SERVICE_DIR / 'files'}",
            # runs are the worker service's (below), never this unprivileged process's
            "--OrchestratorApp.run_engine=False",
            f"--OrchestratorApp.hub_blocked_group={BLOCKED_GROUP}",
            f"--OrchestratorApp.hub_org_groups={env_flag('ORCHESTRATOR_HUB_ORG_GROUPS', True)}",
        ],
        "environment": SERVICE_ENV,
        "oauth_no_confirm": True,
        "display": True,
        "info": {"description": "The Orchestrator API and its interactive documentation"},
        # it starts beside the worker and the scheduler, which open the same database: on a busy
        # machine JupyterHub's 30 s wait for it is not always enough (the hub exits when it runs out)
        "timeout": 120,
    }
)

# ---- runs: a worker as root that forks each run down to its organization's account ----
#
# The API above stays unprivileged. The worker only claims runs and starts each one as a
# system account of the run's organization (orch-<hash>, made on demand like the users'
# accounts; docs/architecture.md, "What separates tenants"), in a folder of that account's
# under RUNS_DIR (root's, 0711). It reaches the database and reads the keys as the service's
# account (prepare_as): nothing of the service's changes owner. The scheduler needs no
# privilege: it runs as the service's account.

RUNS_DIR = TEAM_DIR / "runs"
RUNS_DIR.mkdir(exist_ok=True)
os.chown(RUNS_DIR, 0, 0)
RUNS_DIR.chmod(0o711)
# modules and notebooks of code-first workflows ('module:function'): the operator's, readable by every run
CODE_DIR = Path(env("ORCHESTRATOR_TEAM_CODE_DIR", str(TEAM_DIR / "code")))
CODE_DIR.mkdir(exist_ok=True)
CODE_DIR.chmod(0o755)
ORCHESTRATOR = str(BIN / "jupyter-orchestrator")
c.JupyterHub.services.append(
    {
        "name": f"{SERVICE}-worker",
        "cwd": str(CODE_DIR),
        "command": [
            ORCHESTRATOR,
            "worker",
            f"--WorkerCommand.prepare_as={SERVICE_USER}",
            f"--OrchestratorApp.run_accounts={env('ORCHESTRATOR_RUN_ACCOUNTS', 'per-organization')}",
            f"--OrchestratorApp.run_dir={RUNS_DIR}",
            f"--OrchestratorApp.files_root={CODE_DIR}",
        ],
        "environment": SERVICE_ENV,
    }
)
c.JupyterHub.services.append(
    {
        "name": f"{SERVICE}-scheduler",
        "user": SERVICE_USER,
        "cwd": str(SERVICE_DIR),
        "command": [ORCHESTRATOR, "scheduler"],
        "environment": SERVICE_ENV,
    }
)

# ---- n8n: each organization's instance on demand, as root (docs/frameworks/n8n.md) ----------
#
# Where n8n is installed (`jupyter orchestrator n8n install`, or ORCHESTRATOR_N8N_HOME) and not turned
# off (ORCHESTRATOR_N8N=off), this service starts an organization's n8n when its n8n runs want one, each
# under an account of its own, its data under N8N_DIR/orgs (root's, 0711: the accounts pass through),
# its database made as the service's account, its editor served by the Orchestrator service above.

N8N = installation()
if env("ORCHESTRATOR_N8N", "on-demand").lower() != "off" and N8N.ready():
    N8N_DIR = TEAM_DIR / "n8n"
    N8N_DIR.mkdir(exist_ok=True)
    os.chown(N8N_DIR, 0, 0)
    N8N_DIR.chmod(0o711)
    c.JupyterHub.services.append(
        {
            "name": f"{SERVICE}-n8n",
            "cwd": str(N8N_DIR),
            "command": [
                ORCHESTRATOR,
                "n8n",
                "instances",
                f"--prepare-as={SERVICE_USER}",
                f"--data={N8N_DIR}",
                f"--service-prefix=/services/{SERVICE}/",
            ],
            # the cap and the idle stop (.env.example) where set: a service gets only this environment
            "environment": {**SERVICE_ENV, "ORCHESTRATOR_N8N_HOME": str(N8N.home), **service_environment(os.environ)},
        }
    )

# ---- the dashboard: hub login, then Voila in the user's own server --------------------

c.JupyterHub.services.append(
    {
        "name": "dashboard",
        "url": f"{SCHEME}://127.0.0.1:{DASHBOARD_PORT}",
        "user": env("ORCHESTRATOR_DASHBOARD_USER", "nobody"),
        "cwd": "/",
        "command": [str(BIN / "python"), "-m", "orchestrator_ext.hub.dashboard"],
        "environment": {"PATH": PATH, "ORCHESTRATOR_DASHBOARD_NOTEBOOK": NOTEBOOK},
        "oauth_no_confirm": True,
        "display": True,
        "info": {"description": "Your executions, rendered by Voila in your server"},
    }
)

# ---- internal TLS (docs/deploy/tls.md) -------------------------------------------------

if c.JupyterHub.internal_ssl:
    # the services' certificates where their accounts can read them, and JupyterHub's wait for
    # an https service fixed (orchestrator_ext/hub/tls.py); users' kernels call the API directly,
    # so the API accepts users' servers' certificates too, not only the hub's and the proxy's
    tls.enable(
        {
            SERVICE: tls.ServiceCerts(CERTS_DIR / "services" / SERVICE, trust_servers=True),
            "dashboard": tls.ServiceCerts(CERTS_DIR / "services" / "dashboard"),
            # the scheduler serves nothing, but the hub makes it certificates too, under the API's account
            # name: they leave the hub's store like the API's (the worker runs as root and reads the store)
            f"{SERVICE}-scheduler": tls.ServiceCerts(CERTS_DIR / "services" / f"{SERVICE}-scheduler"),
        }
    )
    # the idle culler (shared.py) reads the hub's own certificate from internal_certs_location

# ---- users' servers ----------------------------------------------------------------

c.JupyterHub.spawner_class = TeamSpawner
c.TeamSpawner.env_prefix = str(ENV_PREFIX)
c.TeamSpawner.certs_root = str(CERTS_DIR)
c.TeamSpawner.orchestrator_api_url = f"{SCHEME}://127.0.0.1:{SERVICE_PORT}/services/{SERVICE}/orchestrator/api/v1"
c.TeamSpawner.orchestrator_service = SERVICE
c.TeamSpawner.blocked_group = BLOCKED_GROUP
c.TeamSpawner.home_root = env("ORCHESTRATOR_TEAM_HOMES", "/home")
c.TeamSpawner.gpu_devices = env("ORCHESTRATOR_TEAM_GPU_DEVICES", "0")
c.TeamSpawner.notebooks = {NOTEBOOK: str(REPOSITORY / "notebooks" / "dashboard.ipynb")}
c.TeamSpawner.default_url = "/lab"
c.TeamSpawner.notebook_dir = "~"
# the Orchestrator extension is installed in that environment (users' code imports
# orchestrator_ext.client) but must not start in users' servers
c.TeamSpawner.args = ["--ServerApp.jpserver_extensions=orchestrator_ext=False"]
c.TeamSpawner.http_timeout = 60
c.TeamSpawner.start_timeout = 120
