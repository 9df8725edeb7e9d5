// The shapes the widgets' Python side and front end share (the workflow spec as the API stores it).

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
// JSON Schema documents are open-ended: read them field by field, checking types as we go
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type JsonSchema = Record<string, any>;

export interface SpecNode {
  id: string;
  type: string;
  config: Record<string, JsonValue>;
  label?: string | null;
}

export interface SpecEdge {
  source: string;
  target: string;
  condition?: string | null;
}

export interface Spec {
  nodes: SpecNode[];
  edges: SpecEdge[];
  [key: string]: unknown;
}

export interface Position {
  x: number;
  y: number;
}

export type Layout = Record<string, Position>;

/** One problem: a dotted location in the spec (``nodes.2.config.prompt``), its message, and who found it. */
export interface Problem {
  field: string;
  message: string;
  source: "browser" | "server";
}

/** Where a problem points: a node (by id), an edge (by index), or the workflow as a whole. */
export interface ProblemTarget {
  node?: string;
  edge?: number;
}

export type NodeState = "pending" | "running" | "done" | "failed" | "waiting" | "skipped";

export interface StepRecord {
  node: string;
  type?: string;
  output?: JsonValue;
  latency_ms?: number;
  model_calls?: number;
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  [key: string]: unknown;
}

/** What the Python side's execution tracker publishes (see orchestrator_widgets/tracking.py). */
export interface RunState {
  execution_id: string;
  status: string;
  nodes: Record<string, NodeState>;
  steps: StepRecord[];
  logs: string;
  outputs: JsonValue | null;
  error: { kind?: string; message?: string; node?: string; [key: string]: unknown } | null;
  waiting_for: { node?: string; question?: string; [key: string]: unknown } | null;
  spec: Spec;
  message: string;
  notebook_html: string;
}
