"""Service of this resource (being written)."""

from __future__ import annotations

from .scope import ScopeFactory
from .settings import ServiceSettings


class ExecutionService:
    def __init__(self, scopes: ScopeFactory, settings: ServiceSettings) -> None:
        self.scopes = scopes
        self.settings = settings
