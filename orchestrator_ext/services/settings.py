"""Settings the services read, copied from the extension app's traits at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .ratelimit import Rate


@dataclass(frozen=True)
class ServiceSettings:
    max_body_bytes: int = 5 * 1024 * 1024
    log_requests: bool = True
    #: the server's root_dir: notebook paths in workflow specs are relative to it
    root_dir: Path = field(default_factory=Path.cwd)
    authenticate_metrics: bool = True
    #: single-user servers: the user every token holder acts as
    owner: str = "owner"
    #: user names that are platform admins whatever authenticates them (hub admins always are)
    platform_admins: frozenset[str] = frozenset()
    #: rate limits (services/ratelimit.py); an organization's own rates come from its tier
    rate_limits: bool = True
    user_writes_rate: Rate = field(default_factory=lambda: Rate(600))
    user_executes_rate: Rate = field(default_factory=lambda: Rate(1200))
    auth_failures_rate: Rate = field(default_factory=lambda: Rate(30))
