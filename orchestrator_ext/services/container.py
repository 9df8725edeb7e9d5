"""Everything a handler needs, built once by the extension app and kept in the web settings."""

from __future__ import annotations

from typing import Any

from ..db.engine import Database
from ..observability.metrics import Metrics
from ..security.crypto import KeyRing
from .admin import AdminService
from .agents import AgentService
from .executions import ExecutionService
from .integrations import IntegrationService
from .live import EventHub
from .organizations import OrganizationService
from .ratelimit import RateLimiter
from .schedules import ScheduleService
from .scope import ScopeFactory
from .settings import ServiceSettings
from .usage import UsageService
from .users import UserService
from .workflows import WorkflowService

__all__ = ["ServiceSettings", "Services"]


class Services:
    def __init__(self, db: Database, keyring: KeyRing, metrics: Metrics, settings: ServiceSettings) -> None:
        self.db = db
        self.keyring = keyring
        self.metrics = metrics
        self.settings = settings
        self.scopes = ScopeFactory(db, keyring)
        self.limiter = RateLimiter(db.engine, enabled=settings.rate_limits)
        self.agents = AgentService(self.scopes)
        self.users = UserService(self.scopes, settings)
        self.organizations = OrganizationService(self.scopes, settings)
        self.workflows = WorkflowService(self.scopes, settings)
        self.executions = ExecutionService(self.scopes, settings, self.limiter)
        self.live = EventHub(db.url)
        self.integrations = IntegrationService(self.scopes, settings)
        self.schedules = ScheduleService(self.scopes, settings)
        self.admin = AdminService(self.scopes)
        self.usage = UsageService(self.scopes)
        #: integration name -> the model integration this server runs itself and gives runs of organizations
        #: with none (the personal mode's local model, once it answers); GET /models lists them
        self.server_models: dict[str, dict[str, Any]] = {}
