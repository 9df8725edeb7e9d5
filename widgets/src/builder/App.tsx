// The agent builder: palette, canvas, side panel, problems, versions, save and run. The spec and the
// layout are widget state (traitlets); the Python side saves, loads versions, validates on the server
// and runs, answering through the same state.
import { useModel, useModelState } from "@anywidget/react";
import { ReactFlowProvider } from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { ExecutionPanel, type RunCommand } from "../shared/ExecutionPanel";
import { completeLayout, autoLayout } from "../shared/layout";
import { SpecChecker, defaultConfig } from "../shared/schema";
import type { JsonSchema, Layout, Position, Problem, RunState, Spec } from "../shared/types";
import { Canvas, type Selection } from "./Canvas";
import * as edit from "./editing";
import { Palette, type PaletteItem } from "./Palette";
import { groupProblems, mergeProblems } from "./problems";
import { EdgePanel, NodePanel } from "./SidePanel";
import { Toolbar, type Status, type VersionItem } from "./Toolbar";
import { RunDialog, type InputField } from "./RunDialog";

const EMPTY_SPEC: Spec = { nodes: [], edges: [] };

function isTyping(target: EventTarget | null): boolean {
  const element = target as HTMLElement | null;
  return Boolean(element && (element.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(element.tagName)));
}

export function App() {
  const model = useModel();
  const [spec, setSpec] = useModelState<Spec>("spec");
  const [layout, setLayout] = useModelState<Layout>("layout");
  const [, setSelectionTrait] = useModelState<string[]>("selection");
  const [schema] = useModelState<JsonSchema>("schema");
  const [palette] = useModelState<PaletteItem[]>("palette");
  const [framework] = useModelState<string>("framework");
  const [serverProblems] = useModelState<Problem[]>("server_problems");
  const [validating] = useModelState<boolean>("validating");
  const [status] = useModelState<Status>("status");
  const [versions] = useModelState<VersionItem[]>("versions");
  const [version] = useModelState<number>("version");
  const [shown] = useModelState<number>("shown");
  const [changes] = useModelState<string[]>("changes");
  const [dirty] = useModelState<boolean>("dirty");
  const [name, setName] = useModelState<string>("name");
  const [inputFields] = useModelState<InputField[]>("input_fields");
  const [run] = useModelState<RunState | null>("run");
  const [tab, setTab] = useModelState<string>("tab");

  const current = useMemo(() => spec ?? EMPTY_SPEC, [spec]);
  const positions = useMemo(() => completeLayout(current, layout ?? {}), [current, layout]);
  const state: edit.Snapshot = useMemo(() => ({ spec: current, layout: positions }), [current, positions]);
  const history = useRef(new edit.History());
  const clipboard = useRef<edit.Clip | null>(null);
  const centre = useRef<() => Position>(() => ({ x: 0, y: 0 }));
  const [selection, setSelection] = useState<Selection>({ nodes: [], edge: null });
  const [announcement, setAnnouncement] = useState("");
  const [running, setRunning] = useState(false);

  const checker = useMemo(() => new SpecChecker(schema ?? {}, framework), [schema, framework]);
  const localProblems = useMemo(() => checker.check(current), [checker, current]);
  const problems = useMemo(() => mergeProblems(localProblems, serverProblems ?? []), [localProblems, serverProblems]);
  const grouped = useMemo(() => groupProblems(problems, current), [problems, current]);

  useEffect(() => setSelectionTrait(selection.nodes), [selection.nodes, setSelectionTrait]);

  const apply = useCallback(
    (next: edit.Snapshot, record = true) => {
      if (next === state) return;
      if (record) history.current.record(state);
      setSpec(next.spec);
      setLayout(next.layout);
    },
    [state, setSpec, setLayout],
  );

  const addType = useCallback(
    (type: string, at?: Position) => {
      const [next, id] = edit.addNode(
        state,
        type,
        defaultConfig(schema ?? {}, type, framework),
        at ?? edit.freeSpot(state.layout, centre.current()),
      );
      apply(next);
      setSelection({ nodes: [id], edge: null });
      setAnnouncement(`Added ${type} node ${id}.`);
    },
    [state, schema, framework, apply],
  );

  const remove = useCallback(
    (nodes: string[], edges: number[]) => {
      apply(edit.removeItems(state, new Set(nodes), new Set(edges)));
      setSelection({ nodes: [], edge: null });
      setAnnouncement(`Deleted ${[...nodes, ...edges.map((i) => `edge ${i + 1}`)].join(", ")}.`);
    },
    [state, apply],
  );

  const undo = useCallback(() => {
    const previous = history.current.undo(state);
    if (previous) apply(previous, false);
  }, [state, apply]);
  const redo = useCallback(() => {
    const next = history.current.redo(state);
    if (next) apply(next, false);
  }, [state, apply]);
  const copy = useCallback(() => {
    if (!selection.nodes.length) return;
    clipboard.current = edit.copy(state, new Set(selection.nodes));
    setAnnouncement(`Copied ${selection.nodes.length} node(s).`);
  }, [state, selection.nodes]);
  const pasteClip = useCallback(() => {
    if (!clipboard.current) return;
    const [next, ids] = edit.paste(state, clipboard.current);
    apply(next);
    setSelection({ nodes: ids, edge: null });
    setAnnouncement(`Pasted ${ids.join(", ")}.`);
  }, [state, apply]);

  const onKeyDown = (event: React.KeyboardEvent) => {
    if (isTyping(event.target) || !(event.ctrlKey || event.metaKey)) return;
    const key = event.key.toLowerCase();
    const actions: Record<string, () => void> = {
      z: event.shiftKey ? redo : undo,
      y: redo,
      c: copy,
      v: pasteClip,
    };
    if (actions[key]) {
      event.preventDefault();
      event.stopPropagation();
      actions[key]();
    }
  };

  const send = (message: Record<string, unknown>) => model.send(message);
  const selectedNode = selection.nodes.length === 1 ? current.nodes.find((n) => n.id === selection.nodes[0]) : undefined;
  const selectedEdge = selection.edge !== null ? current.edges[selection.edge] : undefined;

  return (
    <div className="ow-root ow-builder" onKeyDown={onKeyDown} data-tab={tab}>
      <Toolbar
        name={name}
        onName={setName}
        status={status}
        dirty={dirty}
        problems={problems.length}
        validating={validating}
        versions={versions ?? []}
        version={version}
        changes={changes ?? []}
        canUndo={history.current.canUndo}
        canRedo={history.current.canRedo}
        hasSelection={selection.nodes.length > 0}
        canPaste={clipboard.current !== null}
        tab={tab}
        hasRun={Boolean(run && run.execution_id)}
        onTab={setTab}
        onUndo={undo}
        onRedo={redo}
        onCopy={copy}
        onPaste={pasteClip}
        onLayout={() => apply({ spec: current, layout: autoLayout(current) })}
        onSave={(comment) => send({ type: "save", comment })}
        onReload={() => send({ type: "reload" })}
        onVersion={(v) => send({ type: "load_version", version: v })}
        onRun={() => setRunning(true)}
      />
      <div className="ow-sr-only" aria-live="polite">
        {announcement}
      </div>
      {tab === "run" && run ? (
        <ExecutionPanel run={run} onCommand={(command: RunCommand) => send({ type: "run_command", command })} />
      ) : (
        <div className="ow-body">
          <Palette items={palette ?? []} framework={framework} onAdd={(type) => addType(type)} />
          <ReactFlowProvider>
            <Canvas
              spec={current}
              layout={positions}
              nodeProblems={grouped.byNode}
              edgeProblems={grouped.byEdge}
              selectedNodes={selection.nodes}
              selectedEdge={selection.edge}
              onSelect={setSelection}
              onMove={(moved: Layout) => apply({ spec: current, layout: { ...positions, ...moved } })}
              onConnect={(source, target) => apply(edit.connect(state, source, target))}
              onDelete={remove}
              onDropType={addType}
              onReady={(fn) => (centre.current = fn)}
              autoPlaced={Object.keys(layout ?? {}).length === 0 && current.nodes.length > 0}
              shown={shown ?? 0}
            />
          </ReactFlowProvider>
          <aside className="ow-side" aria-label="Settings and problems">
            {selectedNode && (
              <NodePanel
                root={schema ?? {}}
                framework={framework}
                spec={current}
                node={selectedNode}
                problems={grouped.byNodeField[selectedNode.id] ?? {}}
                onChange={(change) => apply(edit.updateNode(state, selectedNode.id, change))}
                onRename={(id) => {
                  apply(edit.renameNode(state, selectedNode.id, id));
                  setSelection({ nodes: [id], edge: null });
                }}
                onConnect={(target) => {
                  apply(edit.connect(state, selectedNode.id, target));
                  setAnnouncement(`Connected ${selectedNode.id} to ${target}.`);
                }}
                onDelete={() => remove([selectedNode.id], [])}
              />
            )}
            {selectedEdge && selection.edge !== null && (
              <EdgePanel
                edge={selectedEdge}
                problems={grouped.byEdge[selection.edge] ?? []}
                onChange={(change) => apply(edit.updateEdge(state, selection.edge as number, change))}
                onDelete={() => remove([], [selection.edge as number])}
              />
            )}
            {!selectedNode && !selectedEdge && (
              <p className="ow-help">
                Drag a node type onto the canvas (or press it), connect a node's right handle to another's left one,
                select a node to edit its settings.
              </p>
            )}
            <ProblemList problems={problems} general={grouped.general} validating={validating} onPick={setSelection} spec={current} />
          </aside>
        </div>
      )}
      {running && (
        <RunDialog
          fields={inputFields ?? []}
          onCancel={() => setRunning(false)}
          onRun={(inputs) => {
            setRunning(false);
            send({ type: "run", inputs });
          }}
        />
      )}
    </div>
  );
}

function ProblemList(props: {
  problems: Problem[];
  general: Problem[];
  validating: boolean;
  spec: Spec;
  onPick: (selection: Selection) => void;
}) {
  const { problems, spec } = props;
  if (!problems.length) {
    return (
      <p className="ow-valid" role="status">
        {props.validating ? "Checking…" : spec.nodes.length ? "✓ The workflow is valid." : "The workflow is empty."}
      </p>
    );
  }
  return (
    <section className="ow-problems" aria-label="Problems">
      <h3>
        {problems.length} problem{problems.length > 1 ? "s" : ""}
      </h3>
      <ul>
        {problems.map((problem, index) => {
          const parts = problem.field.split(".");
          const at = Number(parts[1]);
          const pick = () => {
            if (parts[0] === "nodes" && spec.nodes[at]) props.onPick({ nodes: [spec.nodes[at].id], edge: null });
            if (parts[0] === "edges" && spec.edges[at]) props.onPick({ nodes: [], edge: at });
          };
          const where =
            parts[0] === "nodes" && spec.nodes[at]
              ? `${spec.nodes[at].id}${parts.length > 2 ? `.${parts.slice(2).join(".")}` : ""}`
              : parts[0] === "edges" && spec.edges[at]
                ? `${spec.edges[at].source} → ${spec.edges[at].target}${parts.length > 2 ? ` (${parts.slice(2).join(".")})` : ""}`
                : problem.field;
          return (
            <li key={index} className={`ow-problem ow-problem-${problem.source}`}>
              <button type="button" className="ow-link" onClick={pick}>
                {where}
              </button>
              : {problem.message}
            </li>
          );
        })}
      </ul>
    </section>
  );
}
