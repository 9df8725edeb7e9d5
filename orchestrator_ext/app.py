"""The orchestrator jupyter-server extension: configuration, start-up and shutdown.

``jupyter orchestrator`` launches a jupyter-server with this extension (and
JupyterLab): the personal mode. Every setting is a trait here, with ``help``;
the environment variables named in ``.env.example`` give their defaults.
"""

from __future__ import annotations

import asyncio
import gc
import getpass
import logging
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Int, List, Unicode, default

from . import __version__, local_model, tracing
from .cli import MigrateCommand, RotateKeysCommand, SetTierCommand
from .db.embedded import EmbeddedPostgres
from .db.engine import Database, PoolSettings
from .db.setup import prepare_database
from .engine.commands import SchedulerCommand, WorkerCommand
from .engine.runs_state import RunsServer, embedded_runs
from .handlers import all_handlers
from .handlers.index import default_dashboard_url
from .hub import identity as hub
from .local_model import ModelCommand
from .observability import logging as ologging
from .observability.metrics import Metrics
from .services.container import Services, ServiceSettings
from .services.ratelimit import Rate
from .settings import OrchestratorSettings

if TYPE_CHECKING:
    import subprocess  # nosec B404 - only for a type annotation

    from .engine.scheduler import Scheduler
    from .engine.worker import Worker
    from .n8n.manager import N8nManager


def _level(value: object) -> int:
    """A traitlets log_level (a number or a name such as 'DEBUG') as a number."""
    if isinstance(value, int):
        return value
    number = logging.getLevelName(str(value).upper())
    return number if isinstance(number, int) else logging.INFO


class OrchestratorApp(OrchestratorSettings, ExtensionApp):
    """Orchestrator: build, run and operate AI agents from Jupyter."""

    name = "orchestrator"
    version = __version__
    description = "Orchestrator: a Jupyter-native platform for AI agents (REST API under /orchestrator/api/v1/)."
    load_other_extensions = True
    # Personal mode on a machine where the only account is root (containers, CI):
    # the server is the user's own, as with `jupyter lab --allow-root`.
    serverapp_config = {"allow_root": os.geteuid() == 0}  # noqa: RUF012
    subcommands = {  # noqa: RUF012
        "migrate": (MigrateCommand, MigrateCommand.description),
        "rotate-keys": (RotateKeysCommand, RotateKeysCommand.description),
        "set-tier": (SetTierCommand, SetTierCommand.description),
        "worker": (WorkerCommand, WorkerCommand.description),
        "scheduler": (SchedulerCommand, SchedulerCommand.description),
        "model": (ModelCommand, ModelCommand.description),
        # imported when used: `jupyter orchestrator deploy NOTEBOOK --agent NAME`, `... kernels install`
        "deploy": ("orchestrator_ext.deploy.DeployCommand", "Deploy a notebook as the next version of a workflow."),
        "kernels": ("orchestrator_kernels.kernelspec.KernelsCommand", "Install the framework kernels."),
        "n8n": ("orchestrator_ext.n8n.cli.N8nCommand", "n8n for the platform: install it, serve it headless."),
    }

    owner = Unicode(
        help="""On a single-user server (no hub), the user name that every caller holding the server's
        token or password acts as. Default: the operating-system user running the server.""",
    ).tag(config=True)

    @default("owner")
    def _default_owner(self) -> str:
        return getpass.getuser()

    migrate_on_start = Bool(True, help="Apply database migrations at start-up.").tag(config=True)
    pool_size = Int(
        10,
        help="Database connections of the server's pool; the fast list path keeps up to as many again of its own.",
    ).tag(config=True)
    pool_max_overflow = Int(10, help="Extra connections allowed above pool_size under load.").tag(config=True)
    pool_timeout = Float(10.0, help="Seconds to wait for a free connection before answering 503.").tag(config=True)
    statement_timeout_ms = Int(30_000, help="PostgreSQL statement_timeout for the server's queries.").tag(config=True)
    max_body_bytes = Int(5 * 1024 * 1024, help="Largest accepted request body, in bytes (larger: 413).").tag(
        config=True
    )
    log_requests = Bool(
        True,
        help="""Log one JSON line per API request (method, route, status, duration, correlation_id):
        refusals (4xx) at INFO, failures (5xx) at ERROR, successes at DEBUG (--debug).""",
    ).tag(config=True)
    authenticate_metrics = Bool(
        True, help="Require authentication for /orchestrator/metrics (like ServerApp.authenticate_prometheus)."
    ).tag(config=True)
    rate_limits = Bool(
        help="""Limit how fast callers change things (429 with Retry-After beyond): each user's writes and runs,
        each organization's runs (its tier's executes_per_minute) and failed authentications per address. Held in
        PostgreSQL, so the limits hold across processes. Env: ORCHESTRATOR_RATE_LIMITS (default true).""",
    ).tag(config=True)
    user_writes_per_minute = Int(600, help="Writes (POST, PUT, PATCH, DELETE) one user may make per minute.").tag(
        config=True
    )
    user_executes_per_minute = Int(1200, help="Runs (POST .../execute) one user may start per minute.").tag(config=True)
    auth_failures_per_minute = Int(
        30, help="Requests with a token that does not authenticate, per client address and minute."
    ).tag(config=True)

    @default("rate_limits")
    def _rate_limits_default(self) -> bool:
        return os.environ.get("ORCHESTRATOR_RATE_LIMITS", "true").strip().lower() not in {"0", "false", "no", "off"}

    hub_blocked_group = Unicode(
        "blocked",
        help="""As a JupyterHub service: members of this hub group are refused by the API (empty: none).""",
    ).tag(config=True)
    hub_org_groups = Bool(
        True,
        help="""As a JupyterHub service: hub groups named org:<slug> (or org:<slug>:<role>) make their
        members members of the organization with that slug, created if missing (docs/deploy/team.md).""",
    ).tag(config=True)
    platform_admins = List(
        Unicode(),
        help="""User names that may use the /admin endpoints (every organization, tiers, limits, slugs).
        JupyterHub admins always may; on a personal server, its owner.""",
    ).tag(config=True)
    dashboard_url = Unicode(
        help="""Where the start page (/orchestrator/) links for the dashboard. Empty: as a JupyterHub service,
        the hub's 'dashboard' service; in the personal mode, notebooks/dashboard.ipynb under the server's root
        directory (rendered by Voila), when it is there.""",
    ).tag(config=True)
    hub_auth_cache_seconds = Int(
        0,
        help="""As a JupyterHub service: seconds to remember the hub's answer about a token or login cookie.
        0 asks the hub on every request, so a user removed or blocked in the hub loses access at once.""",
    ).tag(config=True)

    @default("default_url")
    def _default_default_url(self) -> str:
        if os.environ.get("JUPYTERHUB_SERVICE_NAME"):  # a hub service serves the API only
            return "/orchestrator/docs"
        try:
            import jupyterlab  # type: ignore[import-untyped]  # noqa: F401
        except ImportError:  # pragma: no cover - jupyterlab is a dependency
            return "/orchestrator/docs"
        return "/lab"

    embedded: EmbeddedPostgres | None = None
    #: the embedded server, where organizations' runs' databases are made (engine.runs_state)
    embedded_runs: RunsServer | None = None
    _model_process: subprocess.Popen[bytes] | None = None
    _worker: Worker | None = None
    _n8n: N8nManager | None = None
    _scheduler: Scheduler | None = None
    _scheduler_task: asyncio.Task[None] | None = None
    _scheduler_stop: asyncio.Event
    services: Services | None = None
    #: set when started by ``jupyter orchestrator`` (not when loaded into another server or a test)
    _launched: bool = False

    @classmethod
    def launch_instance(cls, argv: Any = None, **kwargs: Any) -> None:
        cls._launched = True
        super().launch_instance(argv, **kwargs)  # type: ignore[no-untyped-call]

    @classmethod
    def initialize_server(cls, argv: Any = None, load_other_extensions: bool = True, **kwargs: Any) -> Any:
        """The stock server, without a false 'ServerApp.token config is deprecated' warning.

        Nobody sets ServerApp.token here (the token is IdentityProvider.token), but notebook_shim
        reads every attribute of the server while it links (``inspect.getmembers``), and reading
        the deprecated trait warns. Setting it still warns: jupyter-server logs that itself.
        """
        # recorded, not filtered: extensions add filters of their own while they load (voila shows every
        # DeprecationWarning from traitlets), which would win over one added here
        with warnings.catch_warnings(record=True) as caught:
            serverapp = super().initialize_server(argv, load_other_extensions, **kwargs)  # type: ignore[no-untyped-call]
        for warning in caught:
            if not str(warning.message).startswith("ServerApp.token config is deprecated"):
                warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
        return serverapp

    # ---- start-up -------------------------------------------------------------

    def initialize_settings(self) -> None:
        debug = _level(self.serverapp.log_level if self.serverapp else self.log_level) <= logging.DEBUG
        ologging.configure(level=logging.DEBUG if debug else logging.INFO, fmt=self.log_style)
        tracing.setup()  # only where OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/operations/tracing.md)
        app_url = self._prepare_database()
        self.services = Services(
            db=Database(app_url, self._pool_settings()),
            keyring=self.keyring(),
            metrics=Metrics(),
            settings=ServiceSettings(
                max_body_bytes=self.max_body_bytes,
                log_requests=self.log_requests,
                root_dir=Path(self.serverapp.root_dir if self.serverapp else os.getcwd()),
                authenticate_metrics=self.authenticate_metrics,
                owner=self.owner,
                platform_admins=frozenset(self.platform_admins),
                rate_limits=self.rate_limits,
                user_writes_rate=Rate(self.user_writes_per_minute),
                user_executes_rate=Rate(self.user_executes_per_minute),
                auth_failures_rate=Rate(self.auth_failures_per_minute),
            ),
        )
        self.services.metrics.watch_pool(self.services.db.pool_status)
        tracing.instrument_engine(self.services.db.engine)
        self.settings["orchestrator_services"] = self.services
        self.settings["orchestrator_dashboard_url"] = self.dashboard_url or default_dashboard_url(
            self.serverapp.base_url if self.serverapp else "/", self.services.settings.root_dir, os.environ
        )
        self._serve_as_hub_service()
        self._stop_cleanly_on_sigint()
        self.log.info("Orchestrator API at %sorchestrator/api/v1/", self.serverapp.base_url if self.serverapp else "/")

    def _serve_as_hub_service(self) -> None:
        """Behind JupyterHub (its server extension gives the identity): hub rules, the API only."""
        if self.serverapp is None or not hub.served_by_hub(self.serverapp.identity_provider):
            return
        hub.limit_hub_cache(self.serverapp.identity_provider, self.hub_auth_cache_seconds)
        hub.lock_down(self.serverapp, self.settings)
        self.settings["orchestrator_hub"] = hub.HubAccess(
            blocked_group=self.hub_blocked_group, org_groups=self.hub_org_groups
        )
        self.log.info("serving the API only, as a JupyterHub service (hub OAuth identity)")

    def _stop_cleanly_on_sigint(self) -> None:
        """Without a terminal, jupyter-server lets SIGINT raise KeyboardInterrupt and skips its
        cleanup (so ``stop_extension`` never runs). Stop through the server's own path
        instead, as JupyterHub does for its single-user servers."""
        if self._launched and self.serverapp is not None and not (sys.stdin and sys.stdin.isatty()):
            signal.signal(signal.SIGINT, self.serverapp._signal_stop)

    def initialize_handlers(self) -> None:
        self.handlers.extend(all_handlers())
        # Everything loaded so far (modules, classes, settings) lives as long as the
        # server: keep it out of the collector's full passes, which otherwise
        # stall requests for 50-150 ms under load.
        gc.freeze()

    def _prepare_database(self) -> str:
        """Start the embedded server if needed, migrate, and return the server's own URL."""
        prepared = prepare_database(self.database_location(), revision="head" if self.migrate_on_start else None)
        self.embedded = prepared.embedded
        self.embedded_runs = embedded_runs(prepared.runs_admin_url, prepared.runs_host)
        return prepared.app_url

    def _pool_settings(self) -> PoolSettings:
        return PoolSettings(
            size=self.pool_size,
            max_overflow=self.pool_max_overflow,
            timeout=self.pool_timeout,
            statement_timeout_ms=self.statement_timeout_ms,
        )

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        """Personal mode: a worker and the scheduler run in this server's event loop."""
        if self.services is not None and not self.run_engine and "orchestrator_hub" not in self.settings:
            self._start_n8n(self.services.db.url)  # split mode: workers apart, n8n instances beside the server
        if not self.run_engine or self.services is None:
            return
        from .engine.scheduler import Scheduler
        from .engine.worker import Worker

        url = self.services.db.url
        settings = self.worker_settings(self.embedded_runs, self.services.settings.root_dir)
        settings.fallback_model = await self._start_local_model()
        if settings.fallback_model is not None:
            name, integration = settings.fallback_model
            self.services.server_models[name] = integration
        self._worker = Worker(url, settings, self.services.keyring)
        await self._worker.start()
        self._scheduler = Scheduler(url, interval=self.scheduler_interval)
        self._scheduler_stop = asyncio.Event()
        self._scheduler_task = asyncio.create_task(self._scheduler.run(self._scheduler_stop))
        self._start_n8n(url)

    def _start_n8n(self, url: str) -> None:
        from .n8n.manager import for_personal_mode  # n8n beside the server: at start or at the first n8n run

        if self.services is None:
            return
        editor = f"{self.serverapp.base_url if self.serverapp else '/'}orchestrator/n8n/"  # handlers/n8n_editor.py
        self._n8n = for_personal_mode(Path(self.data_dir) / "n8n", url, self.services.keyring, self.owner, editor)

    # ---- shutdown -------------------------------------------------------------

    async def _start_local_model(self) -> tuple[str, dict[str, Any]] | None:
        """Personal mode: the local model server, when installed and wanted; what runs receive for it."""
        if not self.local_model or not local_model.installed():
            return None
        process, base_url = local_model.start_server()
        try:
            await asyncio.to_thread(local_model.wait_until_ready, base_url, process)
        except RuntimeError as exc:
            self.log.warning("the local model did not start (%s): runs need a model integration", exc)
            local_model.stop_server(process)
            return None
        self._model_process = process
        self.log.info("local model %s at %s (integration 'local-model')", local_model.MODEL_ALIAS, base_url)
        os.environ[local_model.URL_ENV] = base_url  # the kernels this server starts: their model()
        return local_model.INTEGRATION_NAME, local_model.integration(base_url)

    async def stop_extension(self) -> None:
        if self._n8n is not None:
            await self._n8n.stop()
            self._n8n = None
        if self._worker is not None:
            await self._worker.stop(grace=5.0)
            self._worker = None
        if self._model_process is not None:
            local_model.stop_server(self._model_process)
            self._model_process = None
            os.environ.pop(local_model.URL_ENV, None)
        if self._scheduler is not None and self._scheduler_task is not None:
            self._scheduler_stop.set()
            await self._scheduler_task
            await self._scheduler.close()
            self._scheduler = None
        if self.services is not None:
            await self.services.live.close()
            await self.services.db.dispose()
            self.services = None
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None
        tracing.shutdown()


main = launch_new_instance = OrchestratorApp.launch_instance
