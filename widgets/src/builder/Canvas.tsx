// The editing canvas (React Flow): nodes from the spec at their positions, drag to move, drop from the
// palette, connect handles, Delete to remove; problems mark the node or edge at fault.
import {
  Background,
  Controls,
  MiniMap,
  ReactFlow,
  applyNodeChanges,
  useNodesInitialized,
  useReactFlow,
  type Connection,
  type Edge,
  type EdgeChange,
  type NodeChange,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { nodeTypes, type AgentFlowNode } from "../shared/FlowNode";
import type { Layout, Position, Spec } from "../shared/types";

export interface Selection {
  nodes: string[];
  edge: number | null;
}

export const DRAG_TYPE = "application/x-orchestrator-node-type";

interface CanvasProps {
  spec: Spec;
  layout: Layout;
  nodeProblems: Record<string, string[]>;
  edgeProblems: Record<number, string[]>;
  selectedNodes: string[];
  selectedEdge: number | null;
  onSelect: (update: (current: Selection) => Selection) => void;
  onMove: (positions: Layout) => void;
  onConnect: (source: string, target: string) => void;
  onDelete: (nodes: string[], edges: number[]) => void;
  onDropType: (type: string, at: Position) => void;
  onReady: (centre: () => Position) => void;
  /** the positions were laid out here (a loaded spec, no saved layout): fit the view to them */
  autoPlaced: boolean;
  /** changes each time a saved version is shown (at its saved positions or laid out): fit it into view */
  shown: number;
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}

export function Canvas(props: CanvasProps) {
  const { spec, layout, nodeProblems, edgeProblems, selectedNodes, selectedEdge } = props;
  const flow = useReactFlow();
  const wrapper = useRef<HTMLDivElement>(null);
  const [nodes, setNodes] = useState<AgentFlowNode[]>([]);
  const moved = useRef<Layout>({});
  const moveTimer = useRef<number | undefined>(undefined);
  const initialized = useNodesInitialized();
  const fitted = useRef(!props.autoPlaced);

  // fit a loaded graph into view once its nodes are measured; never zoom past 100% (a lone node)
  useEffect(() => {
    if (props.autoPlaced) fitted.current = false;
  }, [props.autoPlaced, spec]);
  useEffect(() => {
    if (props.shown) fitted.current = false;
  }, [props.shown]);
  useEffect(() => {
    if (initialized && !fitted.current && nodes.length) {
      fitted.current = true;
      void flow.fitView({ maxZoom: 1, padding: 0.15 });
    }
  }, [initialized, nodes.length, flow]);

  // the spec, layout or problems changed: rebuild node objects, reusing those that did not change
  useEffect(() => {
    setNodes((previous) => {
      const before = new Map(previous.map((node) => [node.id, node]));
      return spec.nodes.map((node) => {
        const old = before.get(node.id);
        const problems = nodeProblems[node.id] ?? [];
        const at = layout[node.id] ?? old?.position ?? { x: 0, y: 0 };
        const selected = selectedNodes.includes(node.id);
        if (
          old &&
          old.data.node === node &&
          sameList(old.data.problems, problems) &&
          old.position.x === at.x &&
          old.position.y === at.y &&
          Boolean(old.selected) === selected
        ) {
          return old;
        }
        return {
          ...(old ?? {}),
          id: node.id,
          type: "agentNode" as const,
          position: at,
          selected,
          data: { node, problems },
          ariaLabel: `${node.label || node.id}, ${node.type} node${problems.length ? `, ${problems.length} problem(s)` : ""}`,
        };
      });
    });
  }, [spec, layout, nodeProblems, selectedNodes]);

  const edges: Edge[] = useMemo(
    () =>
      spec.edges.map((edge, index) => {
        const problems = edgeProblems[index] ?? [];
        const label = problems.length ? `⚠ ${problems[0]}` : (edge.condition ?? undefined);
        return {
          id: `e${index}`,
          source: edge.source,
          target: edge.target,
          label,
          selected: selectedEdge === index,
          className: problems.length ? "ow-edge-invalid" : undefined,
          ariaLabel: `Edge from ${edge.source} to ${edge.target}${edge.condition ? ` when ${edge.condition}` : ""}${
            problems.length ? `: ${problems.join("; ")}` : ""
          }`,
          labelBgPadding: [4, 2] as [number, number],
        };
      }),
    [spec.edges, edgeProblems, selectedEdge],
  );

  const flushMoves = useCallback(() => {
    const positions = moved.current;
    moved.current = {};
    if (Object.keys(positions).length) props.onMove(positions);
  }, [props]);

  const onNodesChange = useCallback(
    (changes: NodeChange<AgentFlowNode>[]) => {
      setNodes((current) => applyNodeChanges(changes, current));
      const picks = changes.filter((change) => change.type === "select");
      for (const change of changes) {
        if (change.type === "position" && change.position && !change.dragging) {
          moved.current[change.id] = change.position;
          window.clearTimeout(moveTimer.current);
          // arrow keys move a node a step per press: keep one undo step for a burst of presses
          moveTimer.current = window.setTimeout(flushMoves, 250);
        }
      }
      if (picks.length) {
        props.onSelect((current) => {
          const chosen = new Set(current.nodes);
          for (const pick of picks) {
            if (pick.type !== "select") continue;
            if (pick.selected) chosen.add(pick.id);
            else chosen.delete(pick.id);
          }
          return { nodes: [...chosen], edge: chosen.size ? null : current.edge };
        });
      }
    },
    [flushMoves, props],
  );

  const onEdgesChange = useCallback(
    (changes: EdgeChange[]) => {
      for (const change of changes) {
        if (change.type === "select") {
          const index = Number(change.id.slice(1));
          if (change.selected) props.onSelect(() => ({ nodes: [], edge: index }));
          else props.onSelect((current) => (current.edge === index ? { ...current, edge: null } : current));
        }
      }
    },
    [props],
  );

  useEffect(() => {
    props.onReady(() => {
      const box = wrapper.current?.getBoundingClientRect();
      if (!box) return { x: 0, y: 0 };
      const centre = flow.screenToFlowPosition({ x: box.left + box.width / 2, y: box.top + box.height / 2 });
      return { x: centre.x - 90, y: centre.y - 150 };
    });
  });

  return (
    <div
      ref={wrapper}
      className="ow-canvas"
      onDragOver={(event) => {
        if (event.dataTransfer.types.includes(DRAG_TYPE)) {
          event.preventDefault();
          event.dataTransfer.dropEffect = "copy";
        }
      }}
      onDrop={(event) => {
        const type = event.dataTransfer.getData(DRAG_TYPE);
        if (!type) return;
        event.preventDefault();
        const at = flow.screenToFlowPosition({ x: event.clientX, y: event.clientY });
        props.onDropType(type, { x: at.x - 90, y: at.y - 32 });
      }}
    >
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onNodeDragStop={(_, __, dragged) => {
          for (const node of dragged) moved.current[node.id] = node.position;
          flushMoves();
        }}
        onConnect={(connection: Connection) => props.onConnect(connection.source, connection.target)}
        onDelete={({ nodes: gone, edges: cut }) =>
          props.onDelete(
            gone.map((node) => node.id),
            cut.map((edge) => Number(edge.id.slice(1))),
          )
        }
        deleteKeyCode={["Delete", "Backspace"]}
        defaultViewport={{ x: 0, y: 0, zoom: 1 }}
        minZoom={0.05}
        onlyRenderVisibleElements={spec.nodes.length > 100}
        proOptions={{ hideAttribution: true }}
        aria-label="Workflow canvas"
      >
        <Background />
        <Controls aria-label="Zoom and fit" />
        <MiniMap pannable zoomable ariaLabel="Mini map of the workflow" />
      </ReactFlow>
    </div>
  );
}
