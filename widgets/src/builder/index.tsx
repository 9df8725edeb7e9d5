// The builder widget's module (anywidget): React renders the App into the widget's element.
import { createRender } from "@anywidget/react";
import "@xyflow/react/dist/style.css";
import "../shared/styles.css";
import { App } from "./App";

export default { render: createRender(App) };
