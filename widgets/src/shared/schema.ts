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

/** A framework's node schemas as the document declares them (``x-frameworks.<framework>.nodes.<type>``). */
export function frameworkNodes(root: JsonSchema, framework: string): Record<string, JsonSchema> {
  const nodes = root["x-frameworks"]?.[framework]?.nodes;
  if (!nodes || typeof nodes !== "object") return {};
  return Object.fromEntries(Object.entries<JsonSchema>(nodes).map(([type, schema]) => [type, resolve(root, schema)]));
}

/** The node schema of a type: the framework's own, else any node schema whose ``type`` is that constant. */
export function nodeSchema(root: JsonSchema, type: string, framework = ""): JsonSchema | undefined {
  const own = frameworkNodes(root, framework)[type];
  if (own) return own;
  return nodeSchemas(root).find((def) => constOf(resolve(root, def.properties.type)) === type);
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

/** The schema of a node type's ``config`` (the framework's node schema for that type), else a free object. */
export function configSchema(root: JsonSchema, type: string, framework = ""): JsonSchema {
  const schema = nodeSchema(root, type, framework);
  if (schema?.properties?.config) return unwrapOptional(root, schema.properties.config);
  const generic = resolve(root, root.$defs?.Node ?? {});
  return generic.properties?.config
    ? unwrapOptional(root, generic.properties.config)
    : { type: "object", additionalProperties: true };
}

/** The node type's description (help in the palette), if the schema has one. */
export function typeDescription(root: JsonSchema, type: string, framework = ""): string {
  const schema = nodeSchema(root, type, framework);
  return String(schema?.description ?? "");
}

/** A new node's config: every property's default (required ones without a default are left for the form). */
export function defaultConfig(root: JsonSchema, type: string, framework = ""): Record<string, JsonValue> {
  const schema = configSchema(root, type, framework);
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
function precise(errors: ErrorObject[] | null | undefined, prefix: string): Problem[] {
  // anyOf/oneOf explain themselves through their branches: keep the precise errors only
  const kept = (errors ?? []).filter((e) => !["anyOf", "oneOf", "if"].includes(e.keyword));
  const seen = new Set<string>();
  const problems: Problem[] = [];
  for (const problem of kept.map(ajvProblem)) {
    const field = prefix ? (problem.field === "spec" ? prefix : `${prefix}.${problem.field}`) : problem.field;
    const key = `${field}: ${problem.message}`;
    if (!seen.has(key)) problems.push({ ...problem, field });
    seen.add(key);
  }
  return problems;
}

/** A checker of specs against the schema (the spec, then each node against its framework's node schema),
 * compiled once; it also checks what a schema cannot (unique ids, edge ends). */
export class SpecChecker {
  private validate: ValidateFunction | null = null;
  private ajv: Ajv2020 | null = null;
  private nodeChecks = new Map<string, ValidateFunction | null>();
  readonly failure: string | null = null;

  constructor(
    private root: JsonSchema,
    private framework = "",
  ) {
    if (!root || Object.keys(root).length === 0) return;
    try {
      this.ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: false });
      const { $id: _id, ...schema } = root;
      void _id;
      this.validate = this.ajv.compile(schema);
    } catch (error) {
      this.failure = `The workflow schema could not be read: ${String(error)}`;
    }
  }

  private nodeCheck(type: string): ValidateFunction | null {
    if (!this.nodeChecks.has(type)) {
      const ref = this.root["x-frameworks"]?.[this.framework]?.nodes?.[type]?.$ref;
      let check: ValidateFunction | null = null;
      if (this.ajv && typeof ref === "string") {
        try {
          check = this.ajv.compile({ $defs: this.root.$defs, $ref: ref });
        } catch {
          check = null;
        }
      }
      this.nodeChecks.set(type, check);
    }
    return this.nodeChecks.get(type) ?? null;
  }

  check(spec: Spec): Problem[] {
    const problems: Problem[] = [];
    if (this.validate && !this.validate(spec)) problems.push(...precise(this.validate.errors, ""));
    spec.nodes.forEach((node, index) => {
      const check = this.nodeCheck(node.type);
      if (check && !check(node)) problems.push(...precise(check.errors, `nodes.${index}`));
    });
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
