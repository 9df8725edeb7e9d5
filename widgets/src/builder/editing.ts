// Pure edits of a spec (and its layout): add, remove, connect, paste. Each returns new objects, so the
// builder can keep every state for undo/redo and React sees what changed.
import type { JsonValue, Layout, Position, Spec, SpecEdge, SpecNode } from "../shared/types";

export interface Snapshot {
  spec: Spec;
  layout: Layout;
}

export function freshId(spec: Spec, type: string, taken: Set<string> = new Set()): string {
  const used = new Set([...spec.nodes.map((node) => node.id), ...taken]);
  const base = type.replace(/[^A-Za-z0-9_-]/g, "_") || "node";
  for (let n = 1; ; n++) if (!used.has(`${base}_${n}`)) return `${base}_${n}`;
}

/** The first place at or below ``at`` where a new node overlaps no other (nodes added by keyboard). */
export function freeSpot(layout: Layout, at: Position, width = 180, height = 64): Position {
  const spot = { ...at };
  const taken = Object.values(layout);
  for (let tries = 0; tries < 200; tries++) {
    const hit = taken.some((p) => Math.abs(p.x - spot.x) < width && Math.abs(p.y - spot.y) < height + 10);
    if (!hit) return spot;
    spot.y += height + 26;
  }
  return spot;
}

export function addNode(state: Snapshot, type: string, config: Record<string, JsonValue>, at: Position): [Snapshot, string] {
  const id = freshId(state.spec, type);
  const node: SpecNode = { id, type, config };
  return [{ spec: { ...state.spec, nodes: [...state.spec.nodes, node] }, layout: { ...state.layout, [id]: at } }, id];
}

export function removeItems(state: Snapshot, nodeIds: Set<string>, edgeIndexes: Set<number>): Snapshot {
  const nodes = state.spec.nodes.filter((node) => !nodeIds.has(node.id));
  const edges = state.spec.edges.filter(
    (edge, index) => !edgeIndexes.has(index) && !nodeIds.has(edge.source) && !nodeIds.has(edge.target),
  );
  const layout = Object.fromEntries(Object.entries(state.layout).filter(([id]) => !nodeIds.has(id)));
  return { spec: { ...state.spec, nodes, edges }, layout };
}

export function connect(state: Snapshot, source: string, target: string): Snapshot {
  if (state.spec.edges.some((edge) => edge.source === source && edge.target === target)) return state;
  return { ...state, spec: { ...state.spec, edges: [...state.spec.edges, { source, target }] } };
}

export function updateNode(state: Snapshot, id: string, change: Partial<SpecNode>): Snapshot {
  const nodes = state.spec.nodes.map((node) => (node.id === id ? { ...node, ...change } : node));
  return { ...state, spec: { ...state.spec, nodes } };
}

export function updateEdge(state: Snapshot, index: number, change: Partial<SpecEdge>): Snapshot {
  const edges = state.spec.edges.map((edge, i) => (i === index ? { ...edge, ...change } : edge));
  return { ...state, spec: { ...state.spec, edges } };
}

/** Rename a node and every edge that names it. */
export function renameNode(state: Snapshot, id: string, next: string): Snapshot {
  const nodes = state.spec.nodes.map((node) => (node.id === id ? { ...node, id: next } : node));
  const edges = state.spec.edges.map((edge) => ({
    ...edge,
    source: edge.source === id ? next : edge.source,
    target: edge.target === id ? next : edge.target,
  }));
  const layout = Object.fromEntries(Object.entries(state.layout).map(([key, at]) => [key === id ? next : key, at]));
  return { spec: { ...state.spec, nodes, edges }, layout };
}

export interface Clip {
  nodes: SpecNode[];
  edges: SpecEdge[];
  layout: Layout;
}

export function copy(state: Snapshot, ids: Set<string>): Clip {
  return {
    nodes: state.spec.nodes.filter((node) => ids.has(node.id)),
    edges: state.spec.edges.filter((edge) => ids.has(edge.source) && ids.has(edge.target)),
    layout: Object.fromEntries(Object.entries(state.layout).filter(([id]) => ids.has(id))),
  };
}

/** Paste copies with fresh ids, shifted down and right, edges among them kept; returns the new ids. */
export function paste(state: Snapshot, clip: Clip): [Snapshot, string[]] {
  const renamed = new Map<string, string>();
  const taken = new Set<string>();
  for (const node of clip.nodes) {
    const id = freshId(state.spec, node.type, taken);
    taken.add(id);
    renamed.set(node.id, id);
  }
  const nodes = clip.nodes.map((node) => ({ ...node, id: renamed.get(node.id) as string }));
  const edges = clip.edges.map((edge) => ({
    ...edge,
    source: renamed.get(edge.source) as string,
    target: renamed.get(edge.target) as string,
  }));
  const layout = { ...state.layout };
  for (const node of clip.nodes) {
    const at = clip.layout[node.id] ?? { x: 0, y: 0 };
    layout[renamed.get(node.id) as string] = { x: at.x + 40, y: at.y + 40 };
  }
  return [
    { spec: { ...state.spec, nodes: [...state.spec.nodes, ...nodes], edges: [...state.spec.edges, ...edges] }, layout },
    nodes.map((node) => node.id),
  ];
}

/** Undo/redo: past and future snapshots around the present one (bounded). */
export class History {
  private past: Snapshot[] = [];
  private future: Snapshot[] = [];
  constructor(private limit = 200) {}

  record(previous: Snapshot): void {
    this.past.push(previous);
    if (this.past.length > this.limit) this.past.shift();
    this.future = [];
  }
  undo(present: Snapshot): Snapshot | null {
    const previous = this.past.pop();
    if (previous) this.future.push(present);
    return previous ?? null;
  }
  redo(present: Snapshot): Snapshot | null {
    const next = this.future.pop();
    if (next) this.past.push(present);
    return next ?? null;
  }
  get canUndo(): boolean {
    return this.past.length > 0;
  }
  get canRedo(): boolean {
    return this.future.length > 0;
  }
}
