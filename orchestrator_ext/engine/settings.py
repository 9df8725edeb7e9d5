"""The execution engine's settings, as traits of a mixin the extension app inherits.

They are configured like every other setting (``c.OrchestratorApp.worker_slots``),
and shared by the personal mode's in-process worker and by ``jupyter
orchestrator worker`` / ``scheduler``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traitlets import Bool, Dict, Float, Int, List, Unicode, default
from traitlets.config import Configurable

from .accounts import PER_ORGANIZATION, closed_socket
from .runs_state import RunsServer

log = logging.getLogger("orchestrator.engine")


@dataclass
class WorkerSettings:
    """How a worker runs; the CLI and the personal mode fill it from the app's traits."""

    slots: int = 2
    lease_seconds: float = 10.0
    heartbeat_seconds: float = 2.0
    poll_seconds: float = 1.0
    reap_seconds: float = 1.0
    kernel_pool_size: int = 2
    #: how python3 notebooks run: "zygote" (forked from a warm interpreter) or "kernel" (a kernel each)
    notebook_engine: str = "zygote"
    runner_pool_size: int = 0
    preload: tuple[str, ...] = ()
    memory_mib: int = 2048
    max_output_bytes: int = 2 * 1024 * 1024
    max_log_bytes: int = 1024 * 1024
    default_timeout_seconds: float = 3600.0
    retry_backoff_seconds: float = 1.0
    retry_backoff_max_seconds: float = 60.0
    #: times a run may lose its worker beyond its max_attempts before it fails
    lost_attempts: int = 2
    #: resource tiers whose runs this worker takes (GPU workers: the GPU tiers); empty: every tier
    tiers: tuple[str, ...] = ()
    workdir_root: Path | None = None
    #: the server where each organization's runs get a database of their own (checkpoints, memory, knowledge)
    state_server: RunsServer | None = None
    #: one database every organization's runs share (runs_database_url without an admin URL); None: none
    state_url: str | None = None
    #: the notebook server's files, where code-first workflows' modules and notebooks live
    files_root: Path | None = None
    #: (name, integration) of the model runs of organizations with none get (the personal mode's local model)
    fallback_model: tuple[str, dict[str, Any]] | None = None
    #: whose account runs execute as: "" (the worker's), "per-organization", "uid:<N>" (see .accounts)
    run_accounts: str = ""
    #: the kernels notebooks may name, and the command each starts from; None: the environment's ipykernel
    kernel_commands: dict[str, list[str]] | None = None
    #: organizations whose warm kernels and fork server are kept at once, and how long an unused one stays
    account_pools: int = 4
    account_idle_seconds: float = 600.0


class EngineSettings(Configurable):
    run_engine = Bool(
        True,
        help="""Run a worker and the scheduler inside this server, so the personal mode works alone.
        Turn off where workers and schedulers run as their own processes
        (`jupyter orchestrator worker`, `jupyter orchestrator scheduler`).""",
    ).tag(config=True)
    worker_slots = Int(2, help="Runs one worker process executes at the same time.").tag(config=True)
    kernel_pool_size = Int(
        2, help="Fresh kernels a worker keeps started ahead for notebook runs (each serves one run)."
    ).tag(config=True)
    notebook_engine = Unicode(
        "zygote",
        help="""How python3 notebooks run: 'zygote' (each run a process forked from a warm interpreter that has
        IPython imported; papermill's engine 'zygote') or 'kernel' (each run on a freshly started Jupyter kernel,
        kernel_pool_size kept warm). Notebooks of other kernels always start their kernel.""",
    ).tag(config=True)
    runner_pool_size = Int(
        1,
        help="""Framework runs fork from a warm server that imported the frameworks (1, the default), or
        start a fresh Python process each (0: slower, nothing shared with the server).""",
    ).tag(config=True)
    runner_preload = Unicode(
        "langgraph,crewai,agno", help="Runtimes the warm runner processes import before their job (comma-separated)."
    ).tag(config=True)
    run_memory_mib = Int(
        2048,
        help="Memory limit of each run, in MiB: what its processes have resident (watched every 0.1 s from the "
        "worker; past it the run is stopped and fails with kind 'resources'); 0: none.",
    ).tag(config=True)
    run_timeout_seconds = Float(3600.0, help="Timeout of a run whose workflow and request set none, in seconds.").tag(
        config=True
    )
    lease_seconds = Float(
        10.0, help="How long a worker holds a run without renewing it; a run whose lease expires is taken up again."
    ).tag(config=True)
    heartbeat_seconds = Float(2.0, help="How often a worker renews its leases.").tag(config=True)
    max_output_bytes = Int(
        2 * 1024 * 1024, help="Printed output kept in an executed notebook, in bytes (the rest is dropped)."
    ).tag(config=True)
    max_log_bytes = Int(1024 * 1024, help="Log kept per run attempt, in bytes.").tag(config=True)
    retry_backoff_seconds = Float(
        1.0, help="Delay before the second attempt of a failed run; it doubles for each further attempt."
    ).tag(config=True)
    worker_tiers = Unicode(
        "",
        help="""Resource tiers whose runs this worker takes, comma-separated (e.g. gpu-small,gpu-large for
        workers on GPU nodes). Empty: runs of every tier.""",
    ).tag(config=True)
    scheduler_interval = Float(1.0, help="How often the scheduler looks for due schedules, in seconds.").tag(
        config=True
    )
    runs_database_url = Unicode(
        help="""PostgreSQL URL of one database every organization's runs share for their state (LangGraph
        checkpoints, Agno memory, pgvector knowledge), where runs_database_admin_url is not set: every run
        can reach it, so use it only where organizations may see each other's runs' state. Empty: each
        organization gets a database of its own (runs_database_admin_url, or the embedded server).
        Env: ORCHESTRATOR_RUNS_DATABASE_URL.""",
    ).tag(config=True)
    runs_database_admin_url = Unicode(
        help="""PostgreSQL URL of a role that may create roles and databases (CREATEROLE, CREATEDB; a superuser
        also creates pgvector in them): each organization's runs get, on that server, a database and a
        password-authenticated role of their own, made on first use, and only their URL. Empty: the
        embedded server's, where there is one. Env: ORCHESTRATOR_RUNS_DATABASE_ADMIN_URL.""",
    ).tag(config=True)
    local_model = Bool(
        True,
        help="""Personal mode: start the local model server (SmolLM2-135M-Instruct, the 'local-model' extra) beside
        the server, and let runs of organizations without a model integration use it as 'local-model'.""",
    ).tag(config=True)
    files_root = Unicode(
        help="""Where code-first workflows' modules and notebooks are found ('module:function').
        Default: the notebook server's root directory (a worker command: its working directory).""",
    ).tag(config=True)
    run_dir = Unicode(help="Where runs get their private working directories. Default: a temporary directory.").tag(
        config=True
    )

    run_accounts = Unicode(
        help=f"""Whose system account runs execute as. '' (personal mode): the worker's own, as the person's
        own notebooks. '{PER_ORGANIZATION}' (team mode): an account of each organization's own, made on
        demand (orch-<hash of its id>, no login, private home), so that no run reaches the platform or
        another organization's runs; the worker must run as root. 'uid:<N>' (Kubernetes worker pods): the
        fixed unprivileged uid and gid N, distinct from the worker's; the worker needs the capabilities
        CHOWN, DAC_OVERRIDE, KILL, SETGID and SETUID. Env: ORCHESTRATOR_RUN_ACCOUNTS.""",
    ).tag(config=True)
    run_kernels = Dict(
        value_trait=List(Unicode()),
        help="""The kernels notebook runs may name (metadata.kernelspec.name) and the command each starts
        from, '{connection_file}' standing for the connection file, e.g.
        {"python3": ["/opt/orchestrator/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]}.
        Kernelspecs on the Jupyter paths are never used: runs could write them. Default: python3, this
        environment's own ipykernel, and the installed frameworks' kernels (orchestrator-langgraph,
        orchestrator-crewai, orchestrator-agno: python -m orchestrator_kernels --framework=NAME).""",
    ).tag(config=True)
    run_account_pools = Int(
        4,
        help="""Where runs execute under accounts of their own: how many organizations' warm kernels and
        fork servers a worker keeps at once (the least recently used are stopped beyond that).""",
    ).tag(config=True)
    run_account_idle_seconds = Float(
        600.0,
        help="Where runs execute under accounts of their own: an organization's warm processes stop "
        "after this long without a run.",
    ).tag(config=True)

    @default("run_accounts")
    def _default_run_accounts(self) -> str:
        return os.environ.get("ORCHESTRATOR_RUN_ACCOUNTS") or ""

    @default("runs_database_admin_url")
    def _default_runs_database_admin_url(self) -> str:
        return os.environ.get("ORCHESTRATOR_RUNS_DATABASE_ADMIN_URL") or ""

    def runs_server(self, embedded: RunsServer | None) -> RunsServer | None:
        """Where organizations' runs' databases are made: ``runs_database_admin_url``'s server, else the
        embedded one (``embedded``), unless ``runs_database_url`` names one database for all."""
        if self.runs_database_admin_url:
            return RunsServer(self.runs_database_admin_url)
        if self.runs_database_url or embedded is None:
            return None
        closed = closed_socket(f"postgresql:///?host={embedded.host}") if self.run_accounts and embedded.host else None
        if closed is not None:  # runs under other accounts would fail to connect, run after run: say it once
            log.warning(
                "runs get no runs' database: its socket is in %s, closed to their accounts (the team mode "
                "sets ORCHESTRATOR_RUNS_SOCKET_DIR)",
                closed,
            )
            return None
        return embedded

    def worker_settings(self, runs: RunsServer | None = None, files_root: Path | None = None) -> WorkerSettings:
        """The worker's settings; ``runs`` (the embedded server's) and ``files_root`` are the defaults the
        caller found."""
        server = self.runs_server(runs)
        return WorkerSettings(
            state_server=server,
            state_url=None if server is not None else self.runs_database_url or None,
            files_root=Path(self.files_root) if self.files_root else files_root,
            slots=self.worker_slots,
            lease_seconds=self.lease_seconds,
            heartbeat_seconds=self.heartbeat_seconds,
            kernel_pool_size=self.kernel_pool_size,
            notebook_engine=self.notebook_engine,
            runner_pool_size=self.runner_pool_size,
            preload=tuple(name.strip() for name in self.runner_preload.split(",") if name.strip()),
            memory_mib=self.run_memory_mib,
            max_output_bytes=self.max_output_bytes,
            max_log_bytes=self.max_log_bytes,
            default_timeout_seconds=self.run_timeout_seconds,
            retry_backoff_seconds=self.retry_backoff_seconds,
            workdir_root=Path(self.run_dir) if self.run_dir else None,
            tiers=tuple(name.strip() for name in self.worker_tiers.split(",") if name.strip()),
            run_accounts=self.run_accounts,
            kernel_commands={name: list(argv) for name, argv in self.run_kernels.items()} or None,
            account_pools=self.run_account_pools,
            account_idle_seconds=self.run_account_idle_seconds,
        )
