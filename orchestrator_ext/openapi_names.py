"""The OpenAPI document's component names: an answer's schema is named after the resource it describes."""

from __future__ import annotations

from typing import Any

REF_PREFIX = "#/components/schemas/"


def resource_names(defs: dict[str, Any]) -> dict[str, str]:
    """``DescribeAgent`` -> ``Agent``: an answer's schema is named after the resource it describes.

    Generated clients get ``Agent`` classes, and tools that tie an ``org_id`` parameter to the
    resource that produces it (schemathesis's stateful phase picks the operations that start a
    scenario that way) find ``Organization``; the pydantic models keep their verbs.
    """
    names = {name: name.removeprefix("Describe") for name in defs if name.startswith("Describe")}
    return {old: new for old, new in names.items() if new and new not in defs}


def renamed_refs(value: Any, renamed: dict[str, str]) -> Any:
    """``value`` with each ``$ref`` to a renamed component pointing at its new name."""
    if isinstance(value, dict):
        out = {k: renamed_refs(v, renamed) for k, v in value.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            name = ref.rsplit("/", 1)[-1]
            out["$ref"] = REF_PREFIX + renamed.get(name, name)
        return out
    if isinstance(value, list):
        return [renamed_refs(v, renamed) for v in value]
    return value


def titled(schema: Any, name: str | None) -> Any:
    """``schema`` with its ``title`` the component's new name, if it has one."""
    return schema if name is None else {**schema, "title": name}
