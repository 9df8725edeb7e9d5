// A node's settings as a form generated from its config's JSON Schema: defaults, enums as choices,
// descriptions as help, a monospace code editor for ``source`` fields, JSON for anything structured.
import { useEffect, useId, useState } from "react";
import { resolve, unwrapOptional } from "./schema";
import type { JsonSchema, JsonValue } from "./types";

const CODE_FIELDS = new Set(["source", "code"]);

interface FieldProps {
  root: JsonSchema;
  name: string;
  schema: JsonSchema;
  value: JsonValue | undefined;
  required: boolean;
  problems: string[];
  onChange: (value: JsonValue | undefined) => void;
}

function kindOf(schema: JsonSchema, name: string): string {
  if (Array.isArray(schema.enum)) return "enum";
  if (CODE_FIELDS.has(name) || schema.format === "python" || schema.contentMediaType === "text/x-python") return "code";
  if (schema.type === "boolean") return "boolean";
  if (schema.type === "integer" || schema.type === "number") return "number";
  if (schema.type === "string") return schema.maxLength !== undefined && schema.maxLength <= 200 ? "text" : "textarea";
  return "json";
}

/** A JSON text box: edits are kept as text until they parse, so a half-typed object is not lost. */
export function JsonField(props: {
  id: string;
  value: JsonValue | undefined;
  describedBy: string;
  onChange: (value: JsonValue | undefined) => void;
  rows?: number;
}) {
  const shown = props.value === undefined ? "" : JSON.stringify(props.value, null, 2);
  const [text, setText] = useState(shown);
  const [error, setError] = useState("");
  useEffect(() => setText(shown), [shown]);
  return (
    <>
      <textarea
        id={props.id}
        className="ow-code"
        rows={props.rows ?? 4}
        value={text}
        aria-describedby={props.describedBy}
        aria-invalid={error ? true : undefined}
        spellCheck={false}
        onChange={(event) => {
          setText(event.target.value);
          if (!event.target.value.trim()) {
            setError("");
            props.onChange(undefined);
            return;
          }
          try {
            props.onChange(JSON.parse(event.target.value) as JsonValue);
            setError("");
          } catch {
            setError("Not valid JSON yet.");
          }
        }}
      />
      {error && <div className="ow-field-error">{error}</div>}
    </>
  );
}

function Field({ root, name, schema, value, required, problems, onChange }: FieldProps) {
  const id = useId();
  const helpId = `${id}-help`;
  const kind = kindOf(schema, name);
  const title = String(schema.title ?? name);
  const help = [schema.description, problems.join("; ")].filter(Boolean).join(" ");
  const label = (
    <label htmlFor={id}>
      {title}
      {required && <span aria-hidden="true"> *</span>}
    </label>
  );
  const common = {
    id,
    "aria-describedby": helpId,
    "aria-invalid": problems.length ? true : undefined,
    "aria-required": required || undefined,
  };
  let input;
  if (kind === "enum") {
    input = (
      <select {...common} value={value === undefined ? "" : String(value)} onChange={(e) => onChange(e.target.value || undefined)}>
        <option value="">{schema.default !== undefined && schema.default !== null ? `(default: ${String(schema.default)})` : "(none)"}</option>
        {(schema.enum as JsonValue[]).map((option) => (
          <option key={String(option)} value={String(option)}>
            {String(option)}
          </option>
        ))}
      </select>
    );
  } else if (kind === "boolean") {
    input = (
      <input
        {...common}
        type="checkbox"
        checked={value === undefined ? Boolean(schema.default) : Boolean(value)}
        onChange={(e) => onChange(e.target.checked)}
      />
    );
  } else if (kind === "number") {
    input = (
      <input
        {...common}
        type="number"
        step={schema.type === "integer" ? 1 : "any"}
        min={schema.minimum}
        max={schema.maximum}
        placeholder={schema.default !== undefined && schema.default !== null ? String(schema.default) : ""}
        value={value === undefined || value === null ? "" : String(value)}
        onChange={(e) => onChange(e.target.value === "" ? undefined : Number(e.target.value))}
      />
    );
  } else if (kind === "text" || kind === "textarea" || kind === "code") {
    const Tag = kind === "text" ? "input" : "textarea";
    input = (
      <Tag
        {...common}
        className={kind === "code" ? "ow-code" : undefined}
        rows={kind === "code" ? 8 : 2}
        spellCheck={kind === "code" ? false : undefined}
        placeholder={schema.default !== undefined && schema.default !== null ? String(schema.default) : ""}
        value={value === undefined || value === null ? "" : String(value)}
        onKeyDown={kind === "code" ? indentWithTab : undefined}
        onChange={(e) => onChange(e.target.value === "" && !required ? undefined : e.target.value)}
      />
    );
  } else {
    input = <JsonField id={id} value={value} describedBy={helpId} onChange={onChange} />;
  }
  void root;
  return (
    <div className={`ow-field ow-field-${kind}${problems.length ? " ow-has-problem" : ""}`}>
      {label}
      {input}
      <div id={helpId} className={problems.length ? "ow-field-error" : "ow-help"}>
        {help}
      </div>
    </div>
  );
}

/** Tab inserts four spaces in a code editor; Escape then Tab leaves it (so the keyboard is never trapped). */
function indentWithTab(event: React.KeyboardEvent<HTMLInputElement | HTMLTextAreaElement>) {
  const area = event.currentTarget as HTMLTextAreaElement;
  if (event.key === "Escape") {
    area.dataset.escaped = "1";
    return;
  }
  if (event.key !== "Tab" || event.shiftKey || area.dataset.escaped === "1") {
    delete area.dataset.escaped;
    return;
  }
  event.preventDefault();
  const { selectionStart, selectionEnd, value } = area;
  const next = `${value.slice(0, selectionStart)}    ${value.slice(selectionEnd)}`;
  const setter = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, "value")?.set;
  setter?.call(area, next);
  area.selectionStart = area.selectionEnd = selectionStart + 4;
  area.dispatchEvent(new Event("input", { bubbles: true }));
}

/** The form of one config object: a field per declared property, JSON for undeclared extra settings. */
export function ConfigForm(props: {
  root: JsonSchema;
  schema: JsonSchema;
  value: Record<string, JsonValue>;
  problems: Record<string, string[]>;
  onChange: (value: Record<string, JsonValue>) => void;
}) {
  const { root, schema, value, problems, onChange } = props;
  const extrasId = useId();
  const properties: Record<string, JsonSchema> = schema.properties ?? {};
  const required = new Set<string>(schema.required ?? []);
  const declared = Object.keys(properties);
  const extras = Object.fromEntries(Object.entries(value).filter(([key]) => !declared.includes(key)));
  const set = (name: string, next: JsonValue | undefined) => {
    const copy = { ...value };
    if (next === undefined) delete copy[name];
    else copy[name] = next;
    onChange(copy);
  };
  const freeForm = schema.additionalProperties !== false;
  const otherProblems = Object.entries(problems)
    .filter(([key]) => !declared.includes(key))
    .flatMap(([key, messages]) => messages.map((m) => (key ? `${key}: ${m}` : m)));
  return (
    <div className="ow-config-form">
      {declared.map((name) => (
        <Field
          key={name}
          root={root}
          name={name}
          schema={unwrapOptional(root, resolve(root, properties[name]))}
          value={value[name]}
          required={required.has(name)}
          problems={problems[name] ?? []}
          onChange={(next) => set(name, next)}
        />
      ))}
      {(freeForm || Object.keys(extras).length > 0) && (
        <div className={`ow-field ow-field-json${otherProblems.length ? " ow-has-problem" : ""}`}>
          <label htmlFor={extrasId}>{declared.length ? "Other settings (JSON)" : "Settings (JSON)"}</label>
          <JsonField
            id={extrasId}
            value={extras}
            rows={declared.length ? 3 : 6}
            describedBy={`${extrasId}-help`}
            onChange={(next) => {
              const kept = Object.fromEntries(Object.entries(value).filter(([key]) => declared.includes(key)));
              const added = next && typeof next === "object" && !Array.isArray(next) ? next : {};
              onChange({ ...kept, ...added });
            }}
          />
          <div id={`${extrasId}-help`} className={otherProblems.length ? "ow-field-error" : "ow-help"}>
            {otherProblems.length
              ? otherProblems.join("; ")
              : "Settings as a JSON object, e.g. {\"prompt\": \"Say hi\"}."}
          </div>
        </div>
      )}
    </div>
  );
}
