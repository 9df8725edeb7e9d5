// The canvas's node: its label, type, state (in a run) and problems, with one input and one output handle.
import { Handle, Position, type Node, type NodeProps } from "@xyflow/react";
import { memo } from "react";
import type { NodeState, SpecNode } from "./types";

export type AgentNodeData = { node: SpecNode; state?: NodeState; problems: string[] };
export type AgentFlowNode = Node<AgentNodeData, "agentNode">;

const AgentNode = memo(function AgentNode({ data, selected }: NodeProps<AgentFlowNode>) {
  const { node, state, problems } = data;
  const classes = ["ow-node", `ow-type-${node.type}`];
  if (state) classes.push(`ow-state-${state}`);
  if (problems.length) classes.push("ow-node-invalid");
  if (selected) classes.push("ow-node-selected");
  return (
    <div className={classes.join(" ")} data-node-id={node.id} data-state={state} title={problems.join("\n") || undefined}>
      {node.type !== "input" && <Handle type="target" position={Position.Left} />}
      <div className="ow-node-title">{node.label || node.id}</div>
      <div className="ow-node-type">
        {node.type}
        {state && <span className="ow-node-state"> · {state}</span>}
      </div>
      {problems.length > 0 && (
        <div className="ow-node-problem" role="note">
          ⚠ {problems[0]}
          {problems.length > 1 ? ` (+${problems.length - 1})` : ""}
        </div>
      )}
      {node.type !== "output" && <Handle type="source" position={Position.Right} />}
    </div>
  );
});

export const nodeTypes = { agentNode: AgentNode };
