// Auto-layout of a workflow graph, left to right (dagre): used for specs that come without positions
// (positions are not part of the spec) and for the toolbar's "Auto-layout".
import dagre from "@dagrejs/dagre";
import type { Layout, Spec } from "./types";

export const NODE_WIDTH = 180;
export const NODE_HEIGHT = 64;

export function autoLayout(spec: Spec): Layout {
  const graph = new dagre.graphlib.Graph();
  graph.setGraph({ rankdir: "LR", nodesep: 30, ranksep: 70, marginx: 20, marginy: 20 });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const node of spec.nodes) graph.setNode(node.id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const edge of spec.edges) {
    if (graph.hasNode(edge.source) && graph.hasNode(edge.target)) graph.setEdge(edge.source, edge.target);
  }
  dagre.layout(graph);
  const layout: Layout = {};
  for (const node of spec.nodes) {
    const placed = graph.node(node.id);
    layout[node.id] = { x: placed.x - NODE_WIDTH / 2, y: placed.y - NODE_HEIGHT / 2 };
  }
  return layout;
}

/** Positions for every node: the known ones kept, the others laid out (only when some are missing). */
export function completeLayout(spec: Spec, layout: Layout): Layout {
  if (spec.nodes.every((node) => layout[node.id])) return layout;
  const fresh = autoLayout(spec);
  return Object.fromEntries(spec.nodes.map((node) => [node.id, layout[node.id] ?? fresh[node.id]]));
}
