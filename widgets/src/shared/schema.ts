// Reading the workflow spec's JSON Schema generically: node types, each type's config schema, defaults,
// and the in-browser check of a spec against it (ajv). Nothing here knows a particular framework.
import Ajv2020, { type ErrorObject, type ValidateFunction } from "ajv/dist/2020";
import type { JsonSchema, JsonValue, Problem, ProblemTarget, Spec } from "./types";

/** Follow local ``$ref``s (``#/$defs/Name``) until a schema without one. */
export function resolve(root: JsonSchema, schema: JsonSchema | undefined): JsonSchema {
  let current: JsonSchema = schema ?? {};
  for (let hops = 0; typeof current.$ref === "string" && hops < 20; hops++) {
    const path = (current.$ref as string).replace(/^#\//, "").split("/");
    let found: JsonSchema | undefined = root;
    for (const part of path) found = found?.[decodeURIComponent(part)];
    if (!found) break;
    const { $ref: _ignored, ...rest } = current;
    void _ignored;
    current = { ...found, ...rest };
  }
  return current;
}

/** ``anyOf: [X, {type: null}]`` (pydantic's Optional) read as X. */
export function unwrapOptional(root: JsonSchema, schema: JsonSchema): JsonSchema {
  const resolved = resolve(root, schema);
  const options = resolved.anyOf ?? resolved.oneOf;
  if (Array.isArray(options)) {
    const real = options.filter((option: JsonSchema) => resolve(root, option).type !== "null");
    if (real.length === 1) {
      const { anyOf: _a, oneOf: _o, ...rest } = resolved;
      void _a;
      void _o;
      return { ...resolve(root, real[0]), ...rest };
    }
  }
  return resolved;
}

function constOf(schema: JsonSchema | undefined): string | undefined {
  if (!schema) return undefined;
  if (typeof schema.const === "string") return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length === 1) return String(schema.enum[0]);
  return undefined;
}

/** Every node schema the document declares: ``$defs`` entries with ``type`` and ``config`` properties. */
function nodeSchemas(root: JsonSchema): JsonSchema[] {
  const defs: JsonSchema = root.$defs ?? root.definitions ?? {};
  return Object.values(defs).filter(
    (def: JsonSchema) => def && typeof def === "object" && def.properties?.type && def.properties?.config,
  );
}

/** The node types the schema allows, in the schema's order. */
export function nodeTypes(root: JsonSchema): string[] {
  const found: string[] = [];
  for (const def of nodeSchemas(root)) {
    const typeSchema = resolve(root, def.properties.type);
    const single = constOf(typeSchema);
    if (single) found.push(single);
    else if (Array.isArray(typeSchema.enum)) found.push(...typeSchema.enum.map(String));
  }
  return Array.from(new Set(found));
}

/** The schema of a node type's ``config`` (a node schema whose ``type`` is that one constant), else a free object. */
export function configSchema(root: JsonSchema, type: string): JsonSchema {
  for (const def of nodeSchemas(root)) {
    if (constOf(resolve(root, def.properties.type)) === type) return unwrapOptional(root, def.properties.config);
  }
  const generic = nodeSchemas(root)[0];
  return generic ? unwrapOptional(root, generic.properties.config) : { type: "object", additionalProperties: true };
}

/** The node type's description (help in the palette), if the schema has one. */
export function typeDescription(root: JsonSchema, type: string): string {
  for (const def of nodeSchemas(root)) {
    if (constOf(resolve(root, def.properties.type)) === type) {
      return String(def.description ?? resolve(root, def.properties.config).description ?? "");
    }
  }
  return "";
}

/** A new node's config: every property's default (required ones without a default are left for the form). */
export function defaultConfig(root: JsonSchema, type: string): Record<string, JsonValue> {
  const schema = configSchema(root, type);
  const config: Record<string, JsonValue> = {};
  for (const [name, property] of Object.entries<JsonSchema>(schema.properties ?? {})) {
    const resolved = resolve(root, property);
    if (resolved.default !== undefined && resolved.default !== null) config[name] = resolved.default as JsonValue;
  }
  return config;
}

/** Where a dotted location points: ``nodes.2...`` is the third node, ``edges.1...`` the second edge. */
export function targetOf(field: string, spec: Spec): ProblemTarget {
  const parts = field.replace(/^spec\./, "").split(".");
  const index = Number(parts[1]);
  if (parts[0] === "nodes" && Number.isInteger(index) && spec.nodes[index]) return { node: spec.nodes[index].id };
  if (parts[0] === "edges" && Number.isInteger(index) && spec.edges[index]) return { edge: index };
  return {};
}

function ajvProblem(error: ErrorObject): Problem {
  const path = error.instancePath.split("/").filter(Boolean);
  if (error.keyword === "required") path.push(String((error.params as { missingProperty: string }).missingProperty));
  if (error.keyword === "additionalProperties") {
    path.push(String((error.params as { additionalProperty: string }).additionalProperty));
    return { field: path.join("."), message: "is not a known setting", source: "browser" };
  }
  return { field: path.join(".") || "spec", message: error.message ?? "is not valid", source: "browser" };
}

/** A checker of specs against the schema, compiled once; it also checks what a schema cannot (ids, edge ends). */
export class SpecChecker {
  private validate: ValidateFunction | null = null;
  readonly failure: string | null = null;

  constructor(root: JsonSchema) {
    if (!root || Object.keys(root).length === 0) return;
    try {
      const ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: false });
      const { $id: _id, ...schema } = root;
      void _id;
      this.validate = ajv.compile(schema);
    } catch (error) {
      this.failure = `The workflow schema could not be read: ${String(error)}`;
    }
  }

  check(spec: Spec): Problem[] {
    const problems: Problem[] = [];
    if (this.validate && !this.validate(spec)) {
      // anyOf/oneOf explain themselves through their branches: keep the precise errors only
      const errors = (this.validate.errors ?? []).filter((e) => !["anyOf", "oneOf", "if"].includes(e.keyword));
      const seen = new Set<string>();
      for (const problem of errors.map(ajvProblem)) {
        const key = `${problem.field}: ${problem.message}`;
        if (!seen.has(key)) problems.push(problem);
        seen.add(key);
      }
    }
    const ids = new Map<string, number>();
    spec.nodes.forEach((node, index) => {
      if (ids.has(node.id)) {
        problems.push({ field: `nodes.${index}.id`, message: `duplicate node id '${node.id}'`, source: "browser" });
      }
      ids.set(node.id, index);
    });
    spec.edges.forEach((edge, index) => {
      for (const end of ["source", "target"] as const) {
        if (!ids.has(edge[end])) {
          problems.push({ field: `edges.${index}.${end}`, message: `no node '${edge[end]}'`, source: "browser" });
        }
      }
    });
    return problems;
  }
}
