"""``record(name, value)``: what a run reports as its outputs.

In a notebook the value is displayed under the MIME type
:data:`RECORD_MIME_TYPE` (raw, so nothing shows in the notebook's rendering
but the executed notebook keeps it); the worker collects those displays into
the execution's ``outputs``. Outside a kernel (a runner process) it goes to
the run's collector set by :func:`collect_records`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

RECORD_MIME_TYPE = "application/vnd.orchestrator.record+json"

_collector: Callable[[str, Any], None] | None = None


class RecordError(ValueError):
    """A recorded value that is not JSON."""


def record(name: str, value: Any) -> None:
    """Record ``value`` (any JSON value) as the run's output ``name``; recording a name again replaces it."""
    if not isinstance(name, str) or not name:
        raise RecordError("record(name, value): name must be a non-empty string")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RecordError(f"record({name!r}, ...): the value must be JSON ({exc})") from exc
    if _collector is not None:
        _collector(name, value)
        return
    from IPython.display import display  # only inside a kernel

    display({RECORD_MIME_TYPE: {name: value}}, raw=True)


def collect_records(collector: Callable[[str, Any], None] | None) -> None:
    """Send later :func:`record` calls of this process to ``collector`` (None: back to display)."""
    global _collector
    _collector = collector


def records_of(notebook: dict[str, Any]) -> dict[str, Any]:
    """The values recorded in an executed notebook, in execution order (later records win)."""
    found: dict[str, Any] = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) if isinstance(cell, dict) else []:
            data = output.get("data") if isinstance(output, dict) else None
            if isinstance(data, dict) and isinstance(data.get(RECORD_MIME_TYPE), dict):
                found.update(data[RECORD_MIME_TYPE])
    return found


INTEGRATIONS_ENV = "ORCHESTRATOR_INTEGRATIONS"


def integration(name: str) -> dict[str, Any]:
    """The integration ``name`` handed to this run: ``{"kind", "config", "secret"}``.

    Only the integrations the workflow's spec lists under ``integrations`` are
    handed over, to this run alone (never through the notebook's cells or outputs).
    """
    import os

    handed = json.loads(os.environ.get(INTEGRATIONS_ENV) or "{}")
    if name not in handed:
        listed = ", ".join(sorted(handed)) or "none"
        raise KeyError(
            f"no integration {name!r} was handed to this run (handed: {listed}); "
            "list it under 'integrations' in the workflow's spec"
        )
    return dict(handed[name])
