// The builder's toolbar: name, save (with a comment), the version picker and what changed, undo/redo,
// copy/paste, auto-layout, run; and the status line (saved, stale save with a reload choice, errors).
import { useId, useState } from "react";

export interface Status {
  kind: "" | "info" | "success" | "error" | "conflict";
  message: string;
}

export interface VersionItem {
  version: number;
  comment: string;
  created_at: string;
}

export interface ToolbarProps {
  name: string;
  onName: (name: string) => void;
  status: Status;
  dirty: boolean;
  problems: number;
  validating: boolean;
  versions: VersionItem[];
  version: number;
  changes: string[];
  canUndo: boolean;
  canRedo: boolean;
  hasSelection: boolean;
  canPaste: boolean;
  tab: string;
  hasRun: boolean;
  onTab: (tab: string) => void;
  onUndo: () => void;
  onRedo: () => void;
  onCopy: () => void;
  onPaste: () => void;
  onLayout: () => void;
  onSave: (comment: string) => void;
  onReload: () => void;
  onVersion: (version: number) => void;
  onRun: () => void;
}

export function Toolbar(props: ToolbarProps) {
  const nameId = useId();
  const commentId = useId();
  const versionId = useId();
  const [comment, setComment] = useState("");
  const status = props.status ?? { kind: "", message: "" };
  return (
    <header className="ow-header">
      <div className="ow-toolbar" role="toolbar" aria-label="Workflow">
        <label htmlFor={nameId} className="ow-sr-only">
          Workflow name
        </label>
        <input
          id={nameId}
          className="ow-name"
          value={props.name}
          placeholder="Workflow name"
          onChange={(event) => props.onName(event.target.value)}
        />
        <label htmlFor={versionId}>Version</label>
        <select
          id={versionId}
          value={props.version || ""}
          disabled={!props.versions.length}
          onChange={(event) => props.onVersion(Number(event.target.value))}
        >
          {!props.versions.length && <option value="">not saved yet</option>}
          {props.versions.map((item) => (
            <option key={item.version} value={item.version}>
              v{item.version}
              {item.comment ? ` — ${item.comment}` : ""}
            </option>
          ))}
        </select>
        <label htmlFor={commentId} className="ow-sr-only">
          What changed (saved with the version)
        </label>
        <input
          id={commentId}
          className="ow-comment"
          value={comment}
          placeholder="What changed"
          onChange={(event) => setComment(event.target.value)}
        />
        <button
          type="button"
          className="ow-primary"
          onClick={() => {
            props.onSave(comment);
            setComment("");
          }}
        >
          Save
        </button>
        <span className="ow-separator" aria-hidden="true" />
        <button type="button" onClick={props.onUndo} disabled={!props.canUndo} aria-keyshortcuts="Control+Z">
          Undo
        </button>
        <button type="button" onClick={props.onRedo} disabled={!props.canRedo} aria-keyshortcuts="Control+Shift+Z">
          Redo
        </button>
        <button type="button" onClick={props.onCopy} disabled={!props.hasSelection} aria-keyshortcuts="Control+C">
          Copy
        </button>
        <button type="button" onClick={props.onPaste} disabled={!props.canPaste} aria-keyshortcuts="Control+V">
          Paste
        </button>
        <button type="button" onClick={props.onLayout}>
          Auto-layout
        </button>
        <span className="ow-separator" aria-hidden="true" />
        <button
          type="button"
          onClick={props.onRun}
          disabled={props.dirty || !props.versions.length || props.problems > 0}
          title={props.dirty ? "Save first: a run uses a saved version" : undefined}
        >
          Run…
        </button>
        {props.hasRun && (
          <div className="ow-tabs" role="group" aria-label="View">
            <button type="button" aria-pressed={props.tab !== "run"} onClick={() => props.onTab("build")}>
              Build
            </button>
            <button type="button" aria-pressed={props.tab === "run"} onClick={() => props.onTab("run")}>
              Run
            </button>
          </div>
        )}
      </div>
      <div className={`ow-status ow-status-${status.kind || "none"}`} role="status" aria-live="polite">
        <span className="ow-save-state">
          {props.dirty ? "Unsaved changes" : props.version ? `Saved as v${props.version}` : "Not saved yet"}
          {props.validating ? " · checking…" : ""}
        </span>
        {status.message && <span className="ow-status-message">{status.message}</span>}
        {status.kind === "conflict" && (
          <button type="button" onClick={props.onReload}>
            Reload the latest version
          </button>
        )}
      </div>
      {props.changes.length > 0 && (
        <details className="ow-changes">
          <summary>What changed in v{props.version}</summary>
          <ul>
            {props.changes.map((change, index) => (
              <li key={index}>{change}</li>
            ))}
          </ul>
        </details>
      )}
    </header>
  );
}
