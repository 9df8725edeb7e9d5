"""What an organization may use: resource tiers (CPU, memory, GPU, concurrency, rates, monthly
allowances) and the rate limiter's buckets.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class ResourceTier(Base):
    __tablename__ = "resource_tiers"
    __table_args__ = (
        CheckConstraint("cpu > 0", name="cpu_positive"),
        CheckConstraint("memory_mib > 0", name="memory_positive"),
        CheckConstraint("gpu_count >= 0", name="gpu_count_non_negative"),
        CheckConstraint("max_concurrent_executions > 0", name="concurrency_positive"),
        CheckConstraint("max_agents > 0", name="max_agents_positive"),
        CheckConstraint("writes_per_minute > 0", name="writes_rate_positive"),
        CheckConstraint("executes_per_minute > 0", name="executes_rate_positive"),
        CheckConstraint("monthly_runs IS NULL OR monthly_runs >= 0", name="monthly_runs_non_negative"),
        CheckConstraint("monthly_tokens IS NULL OR monthly_tokens >= 0", name="monthly_tokens_non_negative"),
        CheckConstraint(
            "monthly_gpu_seconds IS NULL OR monthly_gpu_seconds >= 0", name="monthly_gpu_seconds_non_negative"
        ),
    )

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(128), nullable=False)
    cpu: Mapped[float] = mapped_column(Float, nullable=False)
    memory_mib: Mapped[int] = mapped_column(Integer, nullable=False)
    gpu_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    gpu_type: Mapped[str | None] = mapped_column(String(64))
    max_concurrent_executions: Mapped[int] = mapped_column(Integer, nullable=False)
    max_agents: Mapped[int] = mapped_column(Integer, nullable=False)
    #: an organization's rates (all its members together); see services/ratelimit.py
    writes_per_minute: Mapped[int] = mapped_column(Integer, nullable=False, server_default="600")
    executes_per_minute: Mapped[int] = mapped_column(Integer, nullable=False, server_default="600")
    #: an organization's monthly allowances (migration 0012; None: none); see services/usage.py
    monthly_runs: Mapped[int | None] = mapped_column(BigInteger)
    monthly_tokens: Mapped[int | None] = mapped_column(BigInteger)
    monthly_gpu_seconds: Mapped[int | None] = mapped_column(BigInteger)


class RateLimit(Base):
    """One rate-limit bucket: its theoretical arrival time (GCRA). Not a tenant table."""

    __tablename__ = "rate_limits"
    __table_args__ = (Index("ix_rate_limits_tat", "tat"), {"prefixes": ["UNLOGGED"]})

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tat: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
