// The dashboard's module (anywidget): an organization's runs, agents and schedules, live, with controls.
import { createRender } from "@anywidget/react";
import "@xyflow/react/dist/style.css";
import "../shared/styles.css";
import "./dashboard.css";
import { App } from "./App";

export default { render: createRender(App) };
