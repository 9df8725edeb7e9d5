"""How a worker records the end of an attempt: the final state, a retry, or a wait for a human.

Once per attempt, and retried while the database is away: every write names the attempt and
the worker that holds it (``queue.py``), so a worker that lost its lease changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import psycopg
from orchestrator_runtimes import RunError
from orchestrator_runtimes.runtime import ErrorKind

from .attempts import FAILED, WAITING, Outcome
from .events import EventWriter
from .queue import ClaimedRun, Queue
from .settings import WorkerSettings

log = logging.getLogger("orchestrator.engine")


class Ending:
    """Records the ends of one worker's attempts."""

    def __init__(self, queue: Queue, writer: EventWriter, worker: str, settings: WorkerSettings) -> None:
        self.queue, self.writer, self.name, self.settings = queue, writer, worker, settings

    async def record(self, run: ClaimedRun, outcome: Outcome) -> None:
        """Record how the attempt ended, retrying while the database is away.

        The events waiting to be written (the run's last log lines and steps) go in the same round
        trip, so its log is complete when its end is seen. Should the database refuse that write,
        the events are written apart (each run's alone where one is refused: events.py), then the
        end. Should it refuse what the run produced (its outputs or notebook), the run still ends:
        ``failed``, saying so, rather than being lost and retried forever.
        """
        # one statement (no notebook to save, no retry or wait of two round trips): the writer's lock, which
        # holds back every other run's log meanwhile, is held for one round trip only
        together = outcome.notebook is None and outcome.status != WAITING and not self.retries(run, outcome)
        while True:
            try:
                if together:
                    async with self.writer.taken() as events:
                        recorded = await self._write_end(run, outcome, events)
                else:
                    await self.writer.flush()
                    recorded = await self._write_end(run, outcome, [])
                break
            except (psycopg.OperationalError, OSError):
                log.warning("could not record the end of run %s; retrying", run.id, exc_info=True)
                await asyncio.sleep(1.0)
            except psycopg.Error as exc:
                if together:  # maybe another run's event: its events apart first, then this end alone
                    together = False
                    continue
                if outcome.status == FAILED and outcome.notebook is None and outcome.outputs is None:
                    raise
                log.exception("the database refused the result of run %s", run.id)
                message = f"the run's result could not be stored ({type(exc).__name__}: {exc})"
                outcome = Outcome(FAILED, error=RunError(ErrorKind.INTERNAL, message))
        if recorded:
            log.info("run %s attempt %d ended %s", run.id, run.attempt, outcome.status)
        else:
            log.warning(
                "run %s attempt %d ended but is no longer held by this worker: not recorded", run.id, run.attempt
            )

    async def _write_end(self, run: ClaimedRun, outcome: Outcome, events: list[dict[str, Any]]) -> bool:
        """A retry when attempts are left for a failure worth retrying, else the final state, with ``events``
        in the same statement; False: not held."""
        if outcome.status == WAITING and outcome.waiting_for is not None:
            return await self.queue.wait(run, self.name, outcome.outputs or {}, outcome.waiting_for)
        error = outcome.error.as_json() if outcome.error is not None else None
        if self.retries(run, outcome) and error is not None:
            delay = self.backoff(run.attempt)
            if await self.queue.retry(run, self.name, {**error, "retry_in_seconds": delay}, delay):
                log.info("run %s attempt %d failed; retry in %.1f s", run.id, run.attempt, delay)
                return True
        ended = outcome.status, outcome.outputs, error, outcome.notebook
        return await self.queue.finish(run, self.name, *ended, events=events)

    @staticmethod
    def retries(run: ClaimedRun, outcome: Outcome) -> bool:
        """The attempt failed in a way worth another, and attempts are left."""
        worth = outcome.status == FAILED and outcome.error is not None and outcome.error.retryable
        return worth and run.attempt < run.max_attempts

    def backoff(self, attempt: int) -> float:
        base = self.settings.retry_backoff_seconds * float(2 ** (attempt - 1))
        # jitter spreads the retries of runs that failed together; it is no secret
        jitter = random.uniform(0.8, 1.2)  # noqa: S311  # nosec B311
        return min(self.settings.retry_backoff_max_seconds, base) * jitter
