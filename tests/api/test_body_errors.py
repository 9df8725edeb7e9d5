"""Which field a refused body names: a body that is not an object is the body's error, not ``kind``'s.

``POST /integrations`` takes a union told apart by ``kind``: its errors are
located without the union's tag, and a missing or unknown tag is ``kind``'s.
Pydantic locates "not an object" nowhere (an empty location) as it does a
missing tag: only the tag's errors may be read as ``kind``'s.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator_ext.handlers.base import field_errors
from orchestrator_ext.schemas.integrations import CreateIntegration
from tests.conftest import Api


@pytest.mark.parametrize(
    ("body", "field"),
    [([], "body"), ("tool", "body"), (5, "body"), ({}, "kind"), ({"kind": "zapier", "name": "x"}, "kind")],
)
async def test_a_body_that_is_not_an_object_names_the_body(api: Api, body: Any, field: str) -> None:
    reply = await api("POST", "integrations", body=body)
    assert reply.status == 422, reply.text
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert [e["field"] for e in reply.json["errors"]] == [field], reply.json["errors"]


@pytest.mark.parametrize(("data", "field"), [([], "body"), (None, "body"), ({}, "kind"), ({"kind": "?"}, "kind")])
def test_field_errors_tell_the_body_from_the_tag(data: Any, field: str) -> None:
    """What ``parse_body`` (and every other caller of ``field_errors``) is told, for any input."""
    with pytest.raises(ValidationError) as refused:
        CreateIntegration.model_validate(data)
    assert [error.field for error in field_errors(refused.value, discriminator="kind")] == [field]
