// The side panel: the selected node's settings (a form from its config schema), its id and label,
// connecting it to another node without a mouse, deleting it; or the selected edge's condition.
import { useEffect, useId, useState } from "react";
import { ConfigForm } from "../shared/NodeForm";
import { configSchema } from "../shared/schema";
import type { JsonSchema, JsonValue, Spec, SpecEdge, SpecNode } from "../shared/types";

const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

function IdField({ node, taken, onRename }: { node: SpecNode; taken: Set<string>; onRename: (id: string) => void }) {
  const id = useId();
  const [text, setText] = useState(node.id);
  useEffect(() => setText(node.id), [node.id]);
  const problem = !ID_PATTERN.test(text)
    ? "Letters, digits, '_' and '-' (1-64)."
    : text !== node.id && taken.has(text)
      ? "Another node has this id."
      : "";
  return (
    <div className={`ow-field${problem ? " ow-has-problem" : ""}`}>
      <label htmlFor={id}>Id</label>
      <input
        id={id}
        value={text}
        aria-describedby={`${id}-help`}
        aria-invalid={problem ? true : undefined}
        onChange={(event) => setText(event.target.value)}
        onBlur={() => !problem && text !== node.id && onRename(text)}
        onKeyDown={(event) => event.key === "Enter" && !problem && text !== node.id && onRename(text)}
      />
      <div id={`${id}-help`} className={problem ? "ow-field-error" : "ow-help"}>
        {problem || "Other nodes name this node's output by its id: {id} in templates."}
      </div>
    </div>
  );
}

export interface NodePanelProps {
  root: JsonSchema;
  framework: string;
  spec: Spec;
  node: SpecNode;
  problems: Record<string, string[]>;
  onChange: (change: Partial<SpecNode>) => void;
  onRename: (id: string) => void;
  onConnect: (target: string) => void;
  onDelete: () => void;
}

export function NodePanel({ root, framework, spec, node, problems, onChange, onRename, onConnect, onDelete }: NodePanelProps) {
  const labelId = useId();
  const targetId = useId();
  const [target, setTarget] = useState("");
  const others = spec.nodes.filter((other) => other.id !== node.id);
  const connected = new Set(spec.edges.filter((edge) => edge.source === node.id).map((edge) => edge.target));
  const nodeProblems = problems[""] ?? [];
  return (
    <section className="ow-panel" aria-label={`Settings of ${node.id}`}>
      <h3>
        {node.label || node.id} <span className="ow-help">({node.type})</span>
      </h3>
      {nodeProblems.length > 0 && (
        <div className="ow-field-error" role="note">
          {nodeProblems.join("; ")}
        </div>
      )}
      <IdField node={node} taken={new Set(others.map((other) => other.id))} onRename={onRename} />
      <div className="ow-field">
        <label htmlFor={labelId}>Label</label>
        <input
          id={labelId}
          value={node.label ?? ""}
          placeholder={node.id}
          onChange={(event) => onChange({ label: event.target.value || null })}
        />
      </div>
      <ConfigForm
        root={root}
        schema={configSchema(root, node.type, framework)}
        value={node.config}
        problems={Object.fromEntries(
          Object.entries(problems)
            .filter(([key]) => key.startsWith("config"))
            .map(([key, messages]) => [key.replace(/^config\.?/, ""), messages]),
        )}
        onChange={(config: Record<string, JsonValue>) => onChange({ config })}
      />
      <div className="ow-field ow-connect">
        <label htmlFor={targetId}>Connect to</label>
        <div className="ow-row">
          <select id={targetId} value={target} onChange={(event) => setTarget(event.target.value)}>
            <option value="">(choose a node)</option>
            {others.map((other) => (
              <option key={other.id} value={other.id} disabled={connected.has(other.id)}>
                {other.label || other.id}
              </option>
            ))}
          </select>
          <button type="button" disabled={!target} onClick={() => target && (onConnect(target), setTarget(""))}>
            Connect
          </button>
        </div>
      </div>
      <button type="button" className="ow-danger" onClick={onDelete}>
        Delete node
      </button>
    </section>
  );
}

export function EdgePanel(props: {
  edge: SpecEdge;
  problems: string[];
  onChange: (change: Partial<SpecEdge>) => void;
  onDelete: () => void;
}) {
  const id = useId();
  const { edge, problems } = props;
  return (
    <section className="ow-panel" aria-label={`Edge from ${edge.source} to ${edge.target}`}>
      <h3>
        {edge.source} → {edge.target}
      </h3>
      <div className={`ow-field${problems.length ? " ow-has-problem" : ""}`}>
        <label htmlFor={id}>Condition</label>
        <input
          id={id}
          className="ow-code"
          value={edge.condition ?? ""}
          placeholder="always"
          aria-describedby={`${id}-help`}
          aria-invalid={problems.length ? true : undefined}
          onChange={(event) => props.onChange({ condition: event.target.value || null })}
        />
        <div id={`${id}-help`} className={problems.length ? "ow-field-error" : "ow-help"}>
          {problems.length
            ? problems.join("; ")
            : "Taken when this holds, e.g. approve.approved == true; empty: when no other condition holds."}
        </div>
      </div>
      <button type="button" className="ow-danger" onClick={props.onDelete}>
        Delete edge
      </button>
    </section>
  );
}
