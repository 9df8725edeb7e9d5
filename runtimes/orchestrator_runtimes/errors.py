"""The error taxonomy of runs and the problems of specs: a leaf module every other one imports.

:mod:`.spec`, :mod:`.runtime`, :mod:`.notebook` and the framework runtimes all
report through these types; keeping them here (importing nothing of ours)
means none of those modules needs another one just to name an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ErrorKind(StrEnum):
    """Why a run failed; the same taxonomy for notebooks and every framework."""

    CONFIGURATION = "configuration"  # the workflow or the platform is set up wrong: fix the setup
    INPUT = "input"  # the inputs do not fit the workflow: fix the request
    CODE = "code"  # the workflow's own code raised: read the traceback
    MODEL = "model"  # the model endpoint failed or answered nonsense
    TOOL = "tool"  # a tool the workflow called failed
    TIMEOUT = "timeout"  # the run took longer than its timeout_seconds
    CANCELLED = "cancelled"  # someone cancelled it
    RESOURCES = "resources"  # the run hit its memory or output limit
    INTERNAL = "internal"  # the platform failed: retried when attempts are left only if it was the machine


class RunError(Exception):
    """A run's failure: a kind, a message a user can act on, and details (cell, traceback...)."""

    def __init__(self, kind: ErrorKind, message: str, *, retryable: bool = False, **details: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retryable = retryable
        self.details = details

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "message": self.message, **self.details}


@dataclass(frozen=True)
class SpecError:
    """One problem in a spec: a dotted location and what is wrong there."""

    field: str
    message: str


def invalid_spec(problems: list[tuple[str, str]], what: str = "the workflow spec") -> RunError:
    """The ``configuration`` error of a spec that does not validate: every (field, message), in one message."""
    detail = "; ".join(f"{field}: {message}" for field, message in problems)
    return RunError(
        ErrorKind.CONFIGURATION,
        f"{what} is not valid: {detail}",
        errors=[{"field": field, "message": message} for field, message in problems],
    )
