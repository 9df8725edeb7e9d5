"""Two organizations on one n8n instance, each with a model integration of the same name: each its own credential.

Against the session's real n8n (its public credentials API), as runs provision
them (:func:`orchestrator_runtimes.n8n.models.provision_credential`).
"""

from __future__ import annotations

import dataclasses
import uuid

from orchestrator_runtimes.n8n.api import N8nApi
from orchestrator_runtimes.n8n.models import CREDENTIAL_TYPE, ModelBinding, bind, provision_credential

from tests.n8n.conftest import N8n, exported


def credentials(api: N8nApi) -> dict[str, str]:
    """The instance's OpenAI credentials: their ids by name."""
    listed = api.call("GET", "credentials", query={"limit": 250})["data"]
    return {c["name"]: str(c["id"]) for c in listed if c["type"] == CREDENTIAL_TYPE}


def test_two_organizations_integrations_of_one_name_keep_their_own_credentials(n8n: N8n) -> None:
    api = N8nApi(n8n.base_url, n8n.api_key)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    a = provision_credential(api, ModelBinding("shared-model", "http://127.0.0.1:9/v1", "m", "key-a", org_id=first))
    b = provision_credential(api, ModelBinding("shared-model", "http://127.0.0.1:8/v1", "m", "key-b", org_id=second))
    assert a.credential_id != b.credential_id  # the second organization did not take over the first's
    assert a.credential_name != b.credential_name
    assert first not in a.credential_name  # the id is not shown to the instance's other users: a hash of it
    on_instance = credentials(api)
    assert on_instance[a.credential_name] == a.credential_id
    assert on_instance[b.credential_name] == b.credential_id
    # the first organization's URL changes: its own credential is updated, the second's stays
    moved = dataclasses.replace(a, base_url="http://127.0.0.1:7/v1", credential_id=None)
    again = provision_credential(api, moved)
    assert again.credential_id == a.credential_id
    assert credentials(api)[b.credential_name] == b.credential_id
    # and each organization's copy of a workflow points at its own credential, and is another copy
    node = next(n for n in exported("llm_chain")["nodes"] if n["name"] == "OpenAI Chat Model")
    assert bind(node, a)["credentials"]["openAiApi"] == {"name": a.credential_name, "id": a.credential_id}
    assert bind(node, b)["credentials"]["openAiApi"]["id"] == b.credential_id
    assert a.fingerprint() != dataclasses.replace(a, org_id=second).fingerprint()
