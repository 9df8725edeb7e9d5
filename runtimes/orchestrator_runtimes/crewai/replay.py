"""No replay store in a run: CrewAI's SQLite file of the latest kickoff's task outputs is not written.

Every ``crewai.Crew`` keeps, for ``crewai replay`` (the CLI that re-runs the
latest kickoff from one of its tasks), a SQLite database of its task outputs:
it is created (a file lock, ``journal_mode=WAL``, ``CREATE TABLE``) when the
crew is built, emptied at each kickoff and written after each task, each with
a commit and ``fdatasync``. A run's CrewAI files go to its own folder
(``CREWAI_STORAGE_DIR``), which is deleted when the run ends: nothing can
ever read that database, and in a freshly forked run it cost about a third of
a two-task crew's time (p50 205 -> 117 ms here, the fork server's runs).

:func:`discard_replay_store` makes new crews of this process keep their task
outputs nowhere (:class:`DiscardedTaskOutputs`). The fork server and runner
processes call it when they preload CrewAI (they only ever run our runs); a
crew's ``replay()`` inside a run then finds nothing to replay, as it would
in the run's next process anyway.
"""

from __future__ import annotations

from typing import Any


class DiscardedTaskOutputs:
    """CrewAI's ``TaskOutputStorageHandler`` interface, keeping nothing."""

    def update(self, task_index: int, log: dict[str, Any]) -> None:
        return None

    def add(self, *args: Any, **kwargs: Any) -> None:
        return None

    def reset(self) -> None:
        return None

    def load(self) -> list[dict[str, Any]] | None:
        return None


def discard_replay_store() -> bool:
    """New ``crewai.Crew`` objects of this process get a :class:`DiscardedTaskOutputs`: True when it took
    (False where a CrewAI version keeps the store elsewhere: crews then write it as before)."""
    from crewai import Crew

    private = getattr(Crew, "__private_attributes__", {}).get("_task_output_handler")
    if private is None or not hasattr(private, "default_factory"):
        return False
    private.default_factory = DiscardedTaskOutputs
    return True
