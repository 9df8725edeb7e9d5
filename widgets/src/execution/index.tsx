// The execution view's module (anywidget): a run as it happens, tracked by the Python side.
import { createRender, useModel, useModelState } from "@anywidget/react";
import "@xyflow/react/dist/style.css";
import "../shared/styles.css";
import { ExecutionPanel, type RunCommand } from "../shared/ExecutionPanel";
import type { RunState } from "../shared/types";

function App() {
  const model = useModel();
  const [run] = useModelState<RunState>("run");
  return (
    <div className="ow-root ow-execution-view">
      <ExecutionPanel run={run} onCommand={(command: RunCommand) => model.send({ type: "run_command", command })} />
    </div>
  );
}

export default { render: createRender(App) };
