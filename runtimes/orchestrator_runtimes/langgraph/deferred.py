"""A run's checkpoints kept in memory, written to the runs' database only when someone will read them.

A LangGraph run with the default durability (``exit``) writes its checkpoint
once, when it stops. Nobody reads the checkpoint of a run that succeeded; only
one that stopped for a human (it resumes from it) or failed (a retried attempt
goes on from it) needs it in PostgreSQL. Opening the run's own connection to
the runs' database costs a new PostgreSQL backend (about 7 ms of the
database's CPU and a few of the run's), most of what a trivial run costs the
database. So the first attempt of a run (its thread is new: there is nothing
to read) checkpoints in memory, records what it wrote, and replays that on a
``PostgresSaver`` only when it stops waiting (:meth:`DeferredSaver.persist`,
called before the wait is reported, so a resume always finds it) or fails.
A run that resumes or retries reads its thread, so it gets the database's
saver at once, as do runs whose durability asks for a write after every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from langgraph.checkpoint.memory import InMemorySaver

from ..errors import ErrorKind, RunError

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata


class DeferredSaver(InMemorySaver):
    """An in-memory saver that remembers its writes, in order, to replay them on the runs' database."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.persisted = False

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        self.calls.append(("put", (config, checkpoint, dict(metadata), dict(new_versions))))
        return super().put(config, checkpoint, metadata, new_versions)

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self.calls.append(("put_writes", (config, list(writes), task_id, task_path)))
        super().put_writes(config, writes, task_id, task_path)

    def persist(self) -> None:
        """Write everything checkpointed so far to the runs' database (once): the same calls, in order."""
        if self.persisted or not self.calls:
            return
        from .run import postgres_saver

        with postgres_saver(self.url) as saver:
            try:
                for name, args in self.calls:
                    getattr(saver, name)(*args)
            except Exception as exc:
                raise RunError(
                    ErrorKind.INTERNAL, f"the run's checkpoint could not be written: {exc}", retryable=True
                ) from exc
        self.persisted = True


class deferred_checkpoints(AbstractContextManager[DeferredSaver]):
    """A :class:`DeferredSaver` for one run: it persists what it holds if the run fails (a retried attempt
    goes on from there), and :meth:`DeferredSaver.persist` is called by the runtime before a wait is
    reported."""

    def __init__(self, url: str) -> None:
        self.saver = DeferredSaver(url)

    def __enter__(self) -> DeferredSaver:
        return self.saver

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None and not issubclass(exc_type, GeneratorExit):
            try:
                self.saver.persist()
            except RunError:  # the run's own failure is what it reports; the retry starts over
                return


def defers(durability: str, attempt: int, resume: Any) -> bool:
    """True when a run's checkpoints can wait: written at exit only, on a thread no attempt has used."""
    return durability == "exit" and attempt <= 1 and resume is None
