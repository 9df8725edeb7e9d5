"""What a run is handed: the integrations its spec names (their secrets decrypted), and its models.

A framework run also gets its organization's default model (the ``openai-compatible``
integration named ``default``, else the oldest), else the server's local model where there is
one (personal mode). The claim brings the rows (``queue.CLAIM``: the names it found in the spec,
``looked_for``, and the integrations of those names); they are read apart only where the spec
names one in a place the claim does not look.
"""

from __future__ import annotations

from typing import Any

from ..security.crypto import KeyRing
from .attempts import ActiveRun
from .queue import ClaimedRun, Queue
from .settings import WorkerSettings

#: config keys of a graph spec's nodes and options that name a model integration (queue.CLAIM looks there too)
MODEL_KEYS = ("model", "manager_model", "embedder_model")


def model_references(spec: dict[str, Any]) -> list[str]:
    """The model integrations a graph spec names (in its options and its nodes' config)."""
    found: list[str] = []
    places = [spec.get("options") or {}, *((node.get("config") or {}) for node in spec.get("nodes") or [])]
    for place in places:
        for key in MODEL_KEYS:
            value = place.get(key) if isinstance(place, dict) else None
            if isinstance(value, str) and value:
                found.append(value)
    return found


class Handing:
    """The integrations of a worker's runs, decrypted with its key ring."""

    def __init__(self, queue: Queue, keyring: KeyRing | None, settings: WorkerSettings) -> None:
        self.queue, self.keyring, self.settings = queue, keyring, settings

    async def for_run(self, active: ActiveRun, claimed: bool = False) -> dict[str, dict[str, Any]]:
        """The integrations this run receives: those its spec names, and for frameworks its models; as its claim
        read them (``claimed``: queue.CLAIM) where that looked for every name, else read now."""
        run = active.run
        framework_run = run.framework != "notebook"
        names = [str(name) for name in run.spec.get("integrations") or []]
        if framework_run:
            names.extend(model_references(run.spec))
        handed: dict[str, dict[str, Any]] = {}
        if (names or framework_run) and self.keyring is not None:
            for row in await self._rows(run, names, claimed):
                secret = None
                if row["secret_encrypted"]:
                    secret = self.keyring.decrypt(row["secret_encrypted"], f"integrations.secret:{row['id']}")
                handed[row["name"]] = {"kind": row["kind"], "config": row["config"], "secret": secret}
                if row["is_default"]:
                    active.default_model = row["name"]
        fallback = self.settings.fallback_model  # the server's local model, where it started one
        if fallback is not None and framework_run:
            # no model of its own: the organization's runs use the server's local model
            if active.default_model is None:
                active.default_model = fallback[0]
            if fallback[0] not in handed and fallback[0] in (*names, active.default_model):
                handed[fallback[0]] = dict(fallback[1])
        elif fallback is not None and not any(i["kind"] == fallback[1]["kind"] for i in handed.values()):
            # a notebook run handed no model of its organization's: the kernels' model() finds the local one
            handed[fallback[0]] = dict(fallback[1])
        return handed

    async def _rows(self, run: ClaimedRun, names: list[str], claimed: bool) -> list[dict[str, Any]]:
        rows, looked_for = run.integration_rows, run.looked_for
        if claimed and rows is not None and looked_for is not None and set(names) <= set(looked_for):
            wanted = set(names)
            return [row for row in rows if row["is_default"] or row["name"] in wanted]
        return await self.queue.integrations(run.org_id, names, with_default=run.framework != "notebook")
