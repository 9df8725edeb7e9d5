"""Pure functions over workflow specs for the builder: its palette, what changed between versions,
the inputs a run asks for, and where a problem points. No I/O: tested without a server."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

#: node types per framework, used only where neither the spec schema nor ``GET /runtimes`` says which
#: types a framework runs (the runtimes validate every spec on the server, whatever the palette offers)
FALLBACK_NODE_TYPES: dict[str, tuple[str, ...]] = {
    "langgraph": ("input", "model", "tool", "code", "router", "condition", "human_approval", "output"),
    "crewai": ("agent", "task"),
    "agno": ("agent", "team", "knowledge", "memory", "tool"),
    "n8n": ("n8n_workflow",),
}
_TEMPLATE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z0-9_]+)*\}")
_RESERVED_NAMES = frozenset({"inputs", "last"})


def _defs(schema: Mapping[str, Any]) -> dict[str, Any]:
    defs = schema.get("$defs") or schema.get("definitions") or {}
    return dict(defs) if isinstance(defs, Mapping) else {}


def schema_node_types(schema: Mapping[str, Any]) -> list[str]:
    """The node types the spec schema allows: a ``NodeType`` enum, or the node schemas' ``type`` constants."""
    defs = _defs(schema)
    node_type = defs.get("NodeType")
    if isinstance(node_type, Mapping) and isinstance(node_type.get("enum"), list):
        return [str(value) for value in node_type["enum"]]
    found: list[str] = []
    for definition in defs.values():
        if not isinstance(definition, Mapping):
            continue
        type_schema = (definition.get("properties") or {}).get("type")
        if isinstance(type_schema, Mapping) and "const" in type_schema and "config" in definition.get("properties", {}):
            found.append(str(type_schema["const"]))
    return list(dict.fromkeys(found))


def _described_types(schema: Mapping[str, Any]) -> dict[str, str]:
    """Node type -> description, from node schemas that declare one."""
    described: dict[str, str] = {}
    for definition in _defs(schema).values():
        if not isinstance(definition, Mapping):
            continue
        properties = definition.get("properties") or {}
        type_schema = properties.get("type")
        if isinstance(type_schema, Mapping) and "const" in type_schema and "config" in properties:
            described[str(type_schema["const"])] = str(definition.get("description") or "")
    return described


def _resolve(schema: Mapping[str, Any], node: Any) -> Mapping[str, Any]:
    ref = node.get("$ref") if isinstance(node, Mapping) else None
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        found = _defs(schema).get(ref.removeprefix("#/$defs/"))
        return found if isinstance(found, Mapping) else {}
    return node if isinstance(node, Mapping) else {}


def framework_nodes(schema: Mapping[str, Any], framework: str) -> dict[str, Mapping[str, Any]]:
    """The framework's node schemas by type, where the document declares them (``x-frameworks``)."""
    declared = ((schema.get("x-frameworks") or {}).get(framework) or {}).get("nodes")
    if not isinstance(declared, Mapping):
        return {}
    return {str(kind): _resolve(schema, node) for kind, node in declared.items()}


def framework_node_types(framework: str, runtimes: Iterable[Mapping[str, Any]], schema: Mapping[str, Any]) -> list[str]:
    """The node types a framework's palette offers: the schema's ``x-frameworks`` entry, else what its
    runtime declares, else the fallback table (kept to those the schema allows)."""
    own = framework_nodes(schema, framework)
    if own:
        return list(own)
    allowed = schema_node_types(schema)
    declared: list[str] | None = None
    for runtime in runtimes:
        if runtime.get("name") == framework and isinstance(runtime.get("node_types"), list):
            declared = [str(item.get("type") if isinstance(item, Mapping) else item) for item in runtime["node_types"]]
    wanted = declared if declared is not None else list(FALLBACK_NODE_TYPES.get(framework, ()))
    if not wanted:
        return allowed
    return [kind for kind in wanted if not allowed or kind in allowed]


def palette(framework: str, runtimes: Iterable[Mapping[str, Any]], schema: Mapping[str, Any]) -> list[dict[str, str]]:
    """The palette's items: type, a readable label and the schema's description as help."""
    described = _described_types(schema)
    described.update(
        {kind: str(node.get("description") or "") for kind, node in framework_nodes(schema, framework).items()}
    )
    return [
        {"type": kind, "label": kind.replace("_", " ").capitalize(), "description": described.get(kind, "")}
        for kind in framework_node_types(framework, runtimes, schema)
    ]


def _edge_name(edge: Mapping[str, Any]) -> str:
    return f"{edge.get('source')} → {edge.get('target')}"


def _config_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(before) | set(after))
    return [key for key in keys if before.get(key) != after.get(key)]


def changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[str]:
    """What changed from one spec to the next, in words: nodes added/removed/changed, edges, options."""
    if before is None:
        return ["the first version"]
    old_nodes = {node["id"]: node for node in before.get("nodes") or [] if isinstance(node, Mapping)}
    new_nodes = {node["id"]: node for node in after.get("nodes") or [] if isinstance(node, Mapping)}
    added = sorted(new_nodes.keys() - old_nodes.keys())
    said = [f"added node {node_id} ({new_nodes[node_id].get('type')})" for node_id in added]
    said += [f"removed node {node_id}" for node_id in sorted(old_nodes.keys() - new_nodes.keys())]
    for node_id in sorted(old_nodes.keys() & new_nodes.keys()):
        old, new = old_nodes[node_id], new_nodes[node_id]
        fields = [f"config.{key}" for key in _config_changes(old.get("config") or {}, new.get("config") or {})]
        fields += [key for key in ("type", "label") if old.get(key) != new.get(key)]
        if fields:
            said.append(f"changed node {node_id}: {', '.join(fields)}")
    old_edges = {_edge_name(edge): edge for edge in before.get("edges") or []}
    new_edges = {_edge_name(edge): edge for edge in after.get("edges") or []}
    said += [f"added edge {name}" for name in sorted(new_edges.keys() - old_edges.keys())]
    said += [f"removed edge {name}" for name in sorted(old_edges.keys() - new_edges.keys())]
    said += [
        f"changed the condition of {name}"
        for name in sorted(old_edges.keys() & new_edges.keys())
        if old_edges[name].get("condition") != new_edges[name].get("condition")
    ]
    for key in sorted(set(before) | set(after)):
        if key not in ("nodes", "edges") and before.get(key) != after.get(key):
            said.append(f"changed {key}")
    return said or ["no change"]


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def input_fields(spec: Mapping[str, Any], parameters: Iterable[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """The inputs a run asks for: a notebook's parameters, or the ``{name}``s a graph's settings use that
    are neither node ids nor reserved names (or the properties of an input node's ``schema``)."""
    fields = [
        {"name": str(p["name"]), "type": _json_type(str(p.get("type") or "any")), "default": p.get("default")}
        for p in parameters
    ]
    if fields:
        return fields
    nodes = [node for node in spec.get("nodes") or [] if isinstance(node, Mapping)]
    for node in nodes:
        declared = (node.get("config") or {}).get("schema") if node.get("type") == "input" else None
        if isinstance(declared, Mapping) and isinstance(declared.get("properties"), Mapping):
            return [
                {
                    "name": name,
                    "type": str(prop.get("type") or "string") if isinstance(prop, Mapping) else "string",
                    "default": prop.get("default") if isinstance(prop, Mapping) else None,
                    "description": str(prop.get("description") or "") if isinstance(prop, Mapping) else "",
                }
                for name, prop in declared["properties"].items()
            ]
    ids = {str(node.get("id")) for node in nodes}
    names: dict[str, None] = {}
    for node in nodes:
        for text in _strings(node.get("config") or {}):
            for match in _TEMPLATE.finditer(text):
                if match.group(1) not in ids and match.group(1) not in _RESERVED_NAMES:
                    names[match.group(1)] = None
    return [{"name": name, "type": "string", "default": None, "description": f"used as {{{name}}}"} for name in names]


def _json_type(python_type: str) -> str:
    return {"int": "integer", "float": "number", "bool": "boolean", "str": "string"}.get(python_type, "any")


# ---- node positions, saved with a version (spec.ui.positions) ------------------------


def split_ui(spec: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """A saved spec as the builder edits it (without ``ui``), and the node positions it was saved with."""
    edited = {k: v for k, v in spec.items() if k != "ui"}
    ui = spec.get("ui")
    positions = ui.get("positions") if isinstance(ui, Mapping) else None
    layout: dict[str, dict[str, float]] = {}
    for node_id, at in (positions or {}).items():
        if isinstance(at, Mapping) and isinstance(at.get("x"), int | float) and isinstance(at.get("y"), int | float):
            layout[str(node_id)] = {"x": float(at["x"]), "y": float(at["y"])}
    return edited, layout


def positions_of(spec: Mapping[str, Any], layout: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """The spec's nodes' positions in ``layout`` (rounded to a tenth of a pixel; others' dropped)."""
    ids = {str(node.get("id")) for node in spec.get("nodes") or [] if isinstance(node, Mapping)}
    kept: dict[str, dict[str, float]] = {}
    for node_id, at in layout.items():
        if node_id in ids and isinstance(at, Mapping):
            x, y = at.get("x"), at.get("y")
            if isinstance(x, int | float) and isinstance(y, int | float):
                kept[node_id] = {"x": round(float(x), 1), "y": round(float(y), 1)}
    return kept


def with_positions(spec: Mapping[str, Any], layout: Mapping[str, Any]) -> dict[str, Any]:
    """The spec to save: the edited one, with its nodes' positions under ``ui`` when there are any."""
    positions = positions_of(spec, layout)
    return {**spec, "ui": {"positions": positions}} if positions else dict(spec)
