"""A text's maxLength holds for the text as sent, though the server strips it before storing it.

The document's ``maxLength`` counts the raw text (JSON Schema has no "after stripping");
pydantic strips (``str_strip_whitespace``) before its own length check, so a description
of 5,001 characters starting with a space was stored until ``as_sent`` (the stateful fuzzer
found it: ``test_fuzz``).
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator_ext.schemas.agents import CreateAgent
from orchestrator_ext.schemas.organizations import CreateOrganization


@pytest.mark.parametrize("pad", [" ", "\u0085", "\u3000"])
def test_a_padded_text_over_its_limit_is_refused_naming_its_field(pad: str) -> None:
    with pytest.raises(ValidationError) as refused:
        CreateAgent.model_validate({"name": "a", "framework": "langgraph", "description": pad + "x" * 5000})
    assert [(e["loc"], e["type"]) for e in refused.value.errors()] == [(("description",), "string_too_long")]
    with pytest.raises(ValidationError) as refused:
        CreateOrganization.model_validate({"name": "x" * 200 + pad})
    assert [e["loc"] for e in refused.value.errors()] == [("name",)]


def test_a_text_within_its_limit_is_stripped_as_before() -> None:
    agent = CreateAgent.model_validate({"name": " a ", "framework": "langgraph", "description": " " + "x" * 4999})
    assert (agent.name, len(agent.description)) == ("a", 4999)
