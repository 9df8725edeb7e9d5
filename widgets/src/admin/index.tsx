// The admin widget's module (anywidget): an organization's members, tier and limits, integrations, schedules.
import { createRender } from "@anywidget/react";
import "../shared/styles.css";
import "../dashboard/dashboard.css";
import { App } from "./App";

export default { render: createRender(App) };
