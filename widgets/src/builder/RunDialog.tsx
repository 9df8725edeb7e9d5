// Run: ask for the workflow's inputs (a form from its input fields, plus any other inputs as JSON).
import { useEffect, useId, useRef, useState } from "react";
import { JsonField } from "../shared/NodeForm";
import type { JsonValue } from "../shared/types";

export interface InputField {
  name: string;
  type: string;
  default?: JsonValue;
  description?: string;
}

function parse(type: string, text: string): JsonValue {
  if (type === "integer" || type === "number") return text === "" ? null : Number(text);
  if (type === "boolean") return text === "true";
  if (type === "string") return text;
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return text;
  }
}

export function RunDialog(props: { fields: InputField[]; onRun: (inputs: Record<string, JsonValue>) => void; onCancel: () => void }) {
  const titleId = useId();
  const extraId = useId();
  const first = useRef<HTMLDivElement>(null);
  const [values, setValues] = useState<Record<string, string>>(() =>
    Object.fromEntries(props.fields.map((f) => [f.name, f.default === undefined || f.default === null ? "" : String(f.default)])),
  );
  const [extra, setExtra] = useState<JsonValue | undefined>(undefined);
  useEffect(() => first.current?.querySelector<HTMLElement>("input, textarea, button")?.focus(), []);
  const submit = () => {
    const inputs: Record<string, JsonValue> = {};
    for (const field of props.fields) inputs[field.name] = parse(field.type, values[field.name] ?? "");
    if (extra && typeof extra === "object" && !Array.isArray(extra)) Object.assign(inputs, extra);
    props.onRun(inputs);
  };
  return (
    <div
      className="ow-dialog"
      role="dialog"
      aria-modal="true"
      aria-labelledby={titleId}
      onKeyDown={(event) => event.key === "Escape" && props.onCancel()}
    >
      <div className="ow-dialog-box" ref={first}>
        <h3 id={titleId}>Run this workflow</h3>
        {props.fields.map((field) => (
          <div className="ow-field" key={field.name}>
            <label htmlFor={`${titleId}-${field.name}`}>{field.name}</label>
            <input
              id={`${titleId}-${field.name}`}
              value={values[field.name] ?? ""}
              aria-describedby={`${titleId}-${field.name}-help`}
              onChange={(event) => setValues({ ...values, [field.name]: event.target.value })}
            />
            <div id={`${titleId}-${field.name}-help`} className="ow-help">
              {field.description || field.type}
            </div>
          </div>
        ))}
        <div className="ow-field">
          <label htmlFor={extraId}>{props.fields.length ? "Other inputs (JSON)" : "Inputs (JSON)"}</label>
          <JsonField id={extraId} value={extra} describedBy={`${extraId}-help`} onChange={setExtra} rows={3} />
          <div id={`${extraId}-help`} className="ow-help">
            An object, e.g. {"{\"topic\": \"tea\"}"}.
          </div>
        </div>
        <div className="ow-row">
          <button type="button" className="ow-primary" onClick={submit}>
            Start the run
          </button>
          <button type="button" onClick={props.onCancel}>
            Cancel
          </button>
        </div>
      </div>
    </div>
  );
}
