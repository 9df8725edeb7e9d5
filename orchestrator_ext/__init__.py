"""Orchestrator: the jupyter-server extension (REST API, services, data model)."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import OrchestratorApp

    return [{"module": "orchestrator_ext", "app": OrchestratorApp}]
