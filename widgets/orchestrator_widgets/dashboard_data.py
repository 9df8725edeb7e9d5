"""The dashboard's numbers (counts, runs per hour, durations and model tokens per framework),
computed in the kernel from the runs the API lists (a bounded window).

Pure functions of plain JSON (the API's executions, agents, workflows): what
the :class:`~orchestrator_widgets.dashboard.Dashboard` publishes, and what its
tests check without a server. No aggregate endpoint: the window is bounded
(``WINDOW_RUNS`` runs of the last hours chosen), so one page walk is enough.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

#: every state of a run, in the order a run goes through them (``waiting``: for a person's answer)
STATUSES = ("queued", "running", "waiting", "succeeded", "failed", "cancelled", "timed_out")
ACTIVE = ("running", "queued", "waiting")
FINISHED = frozenset({"succeeded", "failed", "cancelled", "timed_out"})
WINDOW_RUNS = 1000
LATEST = 10

Run = Mapping[str, Any]


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def counts(runs: Iterable[Run]) -> dict[str, int]:
    """Runs by status, every status present (zeros included), ``waiting`` among them."""
    found = Counter(str(run["status"]) for run in runs)
    return {status: found.get(status, 0) for status in STATUSES}


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def per_hour(runs: Iterable[Run], now: datetime, hours: int) -> list[dict[str, Any]]:
    """Runs started per hour by status over the last ``hours`` hours (the hour as an ISO string, UTC)."""
    start = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    cells: Counter[tuple[str, str]] = Counter()
    for run in runs:
        created = parse_time(run.get("created_at"))
        if created is None or created < start:
            continue
        hour = created.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        cells[(hour.isoformat(), str(run["status"]))] += 1
    return [{"hour": hour, "status": status, "runs": n} for (hour, status), n in sorted(cells.items())]


def durations(runs: Iterable[Run], framework_of: Mapping[str, str]) -> list[dict[str, Any]]:
    """p50 and p95 of finished runs' durations (seconds) per framework."""
    seconds: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        started, finished = parse_time(run.get("started_at")), parse_time(run.get("finished_at"))
        if started is None or finished is None:
            continue
        framework = framework_of.get(str(run["agent_id"]), "unknown")
        seconds[framework].append((finished - started).total_seconds())
    return [
        {
            "framework": name,
            "runs": len(values),
            "p50_s": round(percentile(values, 0.5), 3),
            "p95_s": round(percentile(values, 0.95), 3),
        }
        for name, values in sorted(seconds.items())
    ]


def recorded(run: Run, key: str) -> int:
    """A token count the run recorded in ``outputs.usage`` (0 when none, or not a number)."""
    outputs = run.get("outputs")
    usage = outputs.get("usage") if isinstance(outputs, Mapping) else None
    value = usage.get(key) if isinstance(usage, Mapping) else None
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def tokens(runs: Iterable[Run], framework_of: Mapping[str, str]) -> list[dict[str, Any]]:
    """Model tokens (prompt and completion) the window's runs recorded, per framework (only those with any)."""
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    for run in runs:
        framework = framework_of.get(str(run["agent_id"]), "unknown")
        for key in ("prompt_tokens", "completion_tokens"):
            totals[framework][key] += recorded(run, key)
    return [
        {"framework": name, "prompt_tokens": found["prompt_tokens"], "completion_tokens": found["completion_tokens"]}
        for name, found in sorted(totals.items())
        if found["prompt_tokens"] or found["completion_tokens"]
    ]


def agent_rows(agents: Iterable[Run], runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Each agent with its last run, success rate over finished runs, and health in a word."""
    by_agent: dict[str, list[Run]] = defaultdict(list)
    for run in runs:  # newest first, as the API lists them
        by_agent[str(run["agent_id"])].append(run)
    rows = []
    for agent in agents:
        mine = by_agent.get(str(agent["id"]), [])
        finished = [run for run in mine if run["status"] in FINISHED]
        succeeded = sum(1 for run in finished if run["status"] == "succeeded")
        rate = succeeded / len(finished) if finished else None
        rows.append(
            {
                "id": str(agent["id"]),
                "name": agent["name"],
                "framework": agent.get("framework", ""),
                "last_run": brief(mine[0]) if mine else None,
                "runs": len(mine),
                "success_rate": None if rate is None else round(rate, 3),
                "health": health(finished),
            }
        )
    return rows


def health(finished: list[Run]) -> str:
    """``idle`` (no finished run), ``failing`` (the last one failed), ``degraded`` (under 80 % succeed), ``healthy``."""
    if not finished:
        return "idle"
    if finished[0]["status"] != "succeeded":
        return "failing"
    succeeded = sum(1 for run in finished if run["status"] == "succeeded")
    return "healthy" if succeeded / len(finished) >= 0.8 else "degraded"


def brief(run: Run) -> dict[str, Any]:
    """What a row of runs shows: ids for the buttons, status, times, a waiting run's question."""
    waiting = run.get("waiting_for") or {}
    return {
        "id": str(run["id"]),
        "status": str(run["status"]),
        "agent_id": str(run["agent_id"]),
        "workflow_id": str(run["workflow_id"]),
        "version": int(run["version"]),
        "trigger": str(run.get("trigger") or ""),
        "created_at": str(run.get("created_at") or ""),
        "finished_at": str(run.get("finished_at") or ""),
        "question": str(waiting.get("question") or "") if isinstance(waiting, Mapping) else "",
    }


def named(row: dict[str, Any], agents: Mapping[str, str], workflows: Mapping[str, str]) -> dict[str, Any]:
    """A run's row with its agent's and workflow's names (a deleted one: its id's first characters)."""
    return {
        **row,
        "agent": agents.get(row["agent_id"], row["agent_id"][:8]),
        "workflow": workflows.get(row["workflow_id"], row["workflow_id"][:8]),
    }


def board(
    runs: Sequence[Run],
    agents: Sequence[Run],
    workflows: Sequence[Run],
    *,
    now: datetime,
    hours: int,
) -> dict[str, Any]:
    """Everything the dashboard draws from the runs of the window (newest first)."""
    agent_names = {str(a["id"]): str(a["name"]) for a in agents}
    workflow_names = {str(w["id"]): str(w["name"]) for w in workflows}
    rows = [named(brief(run), agent_names, workflow_names) for run in runs]
    frameworks = {str(a["id"]): str(a.get("framework") or "") for a in agents}
    return {
        "counts": counts(runs),
        "active": [row for row in rows if row["status"] in ACTIVE],
        "latest": rows[:LATEST],
        "agents": agent_rows(agents, runs),
        "per_hour": per_hour(runs, now, hours),
        "durations": durations(runs, frameworks),
        "tokens": tokens(runs, frameworks),
    }
