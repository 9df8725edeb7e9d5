"""An organization's usage in a month against its tier's limits and allowances (``GET .../usage``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, StringConstraints

from .common import QueryModel, ResponseModel, Timestamp

#: a calendar month, UTC: ``2026-12``; years 1970 to 2999
Month = Annotated[
    str, StringConstraints(pattern=r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$"), Field(examples=["2026-12"])
]


class UsageQuery(QueryModel):
    month: Month | None = Field(None, description="The calendar month (UTC) to count, YYYY-MM; default: this one.")


class UsageFigure(ResponseModel):
    """How much of one resource the organization used, against what its tier gives it."""

    used: int
    limit: int | None = Field(
        description="What the tier gives (the organization's override where it has one); null: no limit."
    )
    enforced: bool = Field(
        description="Whether the platform refuses work beyond the limit (concurrency: runs wait in the queue); "
        "the monthly allowances are shown, not yet enforced."
    )


class DescribeUsage(ResponseModel):
    """Runs, tokens and GPU-seconds of the month's runs (counted by when each was created), and the runs
    going now against the concurrency limit. Tokens are what the runs recorded (``outputs.usage``: prompt
    plus completion tokens, as the model servers reported them). GPU-seconds: no run records GPU time yet,
    so they are the wall-clock seconds of the month's runs (started to finished, or to now while running)
    times the tier's GPUs per run, while the organization is on a tier with GPUs; 0 otherwise."""

    org_id: uuid.UUID
    tier: str
    month: str = Field(description="The month counted, YYYY-MM (UTC).")
    starts_at: Timestamp
    ends_at: Timestamp
    runs: UsageFigure
    concurrency: UsageFigure
    tokens: UsageFigure
    prompt_tokens: int
    completion_tokens: int
    gpu_seconds: UsageFigure
    gpu_seconds_measured: str = Field(
        description="How GPU-seconds are counted: 'wall_clock' (runs' wall time × GPUs per run on a GPU tier)."
    )
