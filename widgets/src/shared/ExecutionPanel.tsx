// An execution as it happens: the workflow's graph with each node's state, the step behind a node on
// click (output, tokens, timing), logs, outputs, the error at fault, Cancel, and the human-approval
// answer box. Shared by the execution view and the builder's Run tab; the Python side tracks the run.
import { Background, Controls, MiniMap, ReactFlow, ReactFlowProvider, type Edge, type Node } from "@xyflow/react";
import { memo, useMemo, useState } from "react";
import { completeLayout } from "./layout";
import type { JsonValue, NodeState, RunState, StepRecord } from "./types";
import { nodeTypes as flowNodeTypes } from "./FlowNode";

export type RunCommand = { type: "cancel" } | { type: "resume"; answer: JsonValue };

const FINISHED = new Set(["succeeded", "failed", "cancelled", "timed_out"]);

function pretty(value: unknown): string {
  if (value === undefined || value === null) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

function StepDetails({ node, steps, state }: { node: string; steps: StepRecord[]; state: NodeState | undefined }) {
  const mine = steps.filter((step) => step.node === node);
  return (
    <section className="ow-step" aria-label={`Step ${node}`}>
      <h4>
        {node} <span className={`ow-badge ow-state-${state ?? "pending"}`}>{state ?? "pending"}</span>
      </h4>
      {mine.length === 0 && <p className="ow-help">No step recorded for this node yet.</p>}
      {mine.map((step, index) => (
        <div key={index} className="ow-step-record">
          <dl>
            <dt>Time</dt>
            <dd>{step.latency_ms !== undefined ? `${step.latency_ms} ms` : "—"}</dd>
            <dt>Tokens</dt>
            <dd>
              {step.total_tokens ?? 0} ({step.prompt_tokens ?? 0} in, {step.completion_tokens ?? 0} out,{" "}
              {step.model_calls ?? 0} model calls)
            </dd>
          </dl>
          <pre className="ow-output" tabIndex={0} aria-label={`Output of ${node}`}>
            {pretty(step.output)}
          </pre>
        </div>
      ))}
    </section>
  );
}

function Approval({ run, onCommand }: { run: RunState; onCommand: (command: RunCommand) => void }) {
  const [comment, setComment] = useState("");
  const asked = run.waiting_for ?? {};
  return (
    <section className="ow-approval" aria-label="Waiting for your answer" role="region">
      <h4>Waiting for approval{asked.node ? ` at ${asked.node}` : ""}</h4>
      <p className="ow-question">{String(asked.question ?? "Approve this run to continue.")}</p>
      <label htmlFor={`answer-${run.execution_id}`}>Comment (optional)</label>
      <textarea
        id={`answer-${run.execution_id}`}
        rows={2}
        value={comment}
        onChange={(event) => setComment(event.target.value)}
      />
      <div className="ow-row">
        <button type="button" className="ow-primary" onClick={() => onCommand({ type: "resume", answer: { approved: true, comment } })}>
          Approve
        </button>
        <button type="button" onClick={() => onCommand({ type: "resume", answer: { approved: false, comment } })}>
          Reject
        </button>
      </div>
    </section>
  );
}

function RunGraph({ run, selected, onSelect }: { run: RunState; selected: string; onSelect: (id: string) => void }) {
  const layout = useMemo(() => completeLayout(run.spec, {}), [run.spec]);
  const nodes: Node[] = useMemo(
    () =>
      run.spec.nodes.map((node) => ({
        id: node.id,
        type: "agentNode",
        position: layout[node.id],
        selected: node.id === selected,
        draggable: false,
        connectable: false,
        data: { node, state: run.nodes[node.id] ?? "pending", problems: [] },
        ariaLabel: `${node.label || node.id} (${node.type}): ${run.nodes[node.id] ?? "pending"}`,
      })),
    [run.spec, run.nodes, layout, selected],
  );
  const edges: Edge[] = useMemo(
    () =>
      run.spec.edges.map((edge, index) => ({
        id: `e${index}`,
        source: edge.source,
        target: edge.target,
        label: edge.condition ?? undefined,
        animated: run.nodes[edge.source] === "done" && run.nodes[edge.target] === "running",
      })),
    [run.spec, run.nodes],
  );
  return (
    <div className="ow-canvas ow-run-canvas">
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={flowNodeTypes}
        nodesDraggable={false}
        nodesConnectable={false}
        onNodeClick={(_, node) => onSelect(node.id)}
        onNodesChange={(changes) => {
          for (const change of changes) if (change.type === "select" && change.selected) onSelect(change.id);
        }}
        fitView
        minZoom={0.1}
        proOptions={{ hideAttribution: true }}
        aria-label="Execution graph"
      >
        <Background />
        <Controls showInteractive={false} aria-label="Zoom controls" />
        {run.spec.nodes.length > 12 && <MiniMap pannable zoomable ariaLabel="Mini map" />}
      </ReactFlow>
    </div>
  );
}

export const ExecutionPanel = memo(function ExecutionPanel(props: { run: RunState; onCommand: (c: RunCommand) => void }) {
  const { run, onCommand } = props;
  const [selected, setSelected] = useState("");
  const failedAt = run.error?.node ? String(run.error.node) : "";
  const focus = selected || failedAt || run.waiting_for?.node || "";
  const finished = FINISHED.has(run.status);
  return (
    <div className="ow-execution" data-status={run.status}>
      <div className="ow-toolbar" role="toolbar" aria-label="Execution">
        <span className={`ow-badge ow-status-${run.status}`} role="status" aria-live="polite">
          {run.status || "loading"}
        </span>
        <span className="ow-help ow-exec-id">Execution {run.execution_id}</span>
        <span className="ow-message" aria-live="polite">{run.message}</span>
        <button type="button" disabled={finished || !run.execution_id} onClick={() => onCommand({ type: "cancel" })}>
          Cancel
        </button>
      </div>
      <div className="ow-body">
        {run.spec.nodes.length > 0 ? (
          <ReactFlowProvider>
            <RunGraph run={run} selected={focus} onSelect={setSelected} />
          </ReactFlowProvider>
        ) : (
          <p className="ow-canvas ow-help">This run has no graph (a notebook or code-first workflow).</p>
        )}
        <aside className="ow-side" aria-label="Run details">
          {run.status === "waiting" && <Approval run={run} onCommand={onCommand} />}
          {run.error && (
            <section className="ow-error" role="alert">
              <h4>
                Error{run.error.kind ? ` (${run.error.kind})` : ""}
                {failedAt ? ` at ${failedAt}` : ""}
                {typeof run.error.cell === "number" ? ` in cell ${run.error.cell}` : ""}
              </h4>
              <pre>{String(run.error.message ?? pretty(run.error))}</pre>
            </section>
          )}
          {focus && <StepDetails node={focus} steps={run.steps} state={run.nodes[focus]} />}
          {run.outputs !== null && finished && (
            <details open>
              <summary>Outputs</summary>
              <pre className="ow-output" tabIndex={0} aria-label="Outputs">
                {pretty((run.outputs as Record<string, JsonValue>)?.output ?? run.outputs)}
              </pre>
            </details>
          )}
          {run.notebook_html && (
            <details open>
              <summary>Executed notebook</summary>
              <iframe className="ow-notebook" sandbox="" srcDoc={run.notebook_html} title="Executed notebook" />
            </details>
          )}
          <details open={!run.spec.nodes.length}>
            <summary>Logs</summary>
            <pre className="ow-logs" tabIndex={0} aria-label="Logs">
              {run.logs || "(no log lines yet)"}
            </pre>
          </details>
        </aside>
      </div>
    </div>
  );
});
