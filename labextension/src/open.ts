/**
 * The launcher cards' action: a new notebook beside the file browser's folder, holding the widget
 * (Builder(), Dashboard() or Admin()) and run at once, so the card opens what its name says. The
 * notebook stays: the user keeps it, renames it, or adds cells around the widget.
 */
import type { IDocumentManager } from "@jupyterlab/docmanager";
import { NotebookActions, type NotebookPanel } from "@jupyterlab/notebook";
import type { Contents } from "@jupyterlab/services";
import { PathExt } from "@jupyterlab/coreutils";

/** One launcher card: what it is called and which widget its notebook shows. */
export interface WidgetKind {
  id: string;
  title: string;
  caption: string;
  intro: string;
  code: string;
}

export const KINDS: WidgetKind[] = [
  {
    id: "builder",
    title: "Agent builder",
    caption: "Draw an agent, check it as you draw, save versions and run it",
    intro:
      "# Agent builder\n\nDrag nodes from the palette onto the canvas and connect them; each change is checked at once. " +
      "**Save** creates the workflow's next version, **Run** asks for the inputs and opens the execution view. " +
      "To edit a saved workflow: `Builder(workflow_id=\"...\")`.",
    code: "from orchestrator_widgets import Builder\n\nBuilder()",
  },
  {
    id: "dashboard",
    title: "Dashboard",
    caption: "Your organization's agents and runs, live, with charts and controls",
    intro:
      "# Dashboard\n\nThe organization's agents, runs per hour, durations and tokens, and the running, queued and " +
      "waiting runs as they change. `Dashboard(hours=168)` shows a week.",
    code: "from orchestrator_widgets import Dashboard\n\nDashboard()",
  },
  {
    id: "admin",
    title: "Admin",
    caption: "Members and roles, tier and usage, integrations and schedules of your organization",
    intro:
      "# Admin\n\nMembers and their roles, the tier's limits against what runs now, integrations (secrets are " +
      "write-only) and schedules. Owners and admins can change them; others see them read-only.",
    code: "from orchestrator_widgets import Admin\n\nAdmin()",
  },
];

function notebookFor(kind: WidgetKind) {
  const cell = (type: "markdown" | "code", source: string) => ({
    cell_type: type,
    metadata: {},
    source,
    ...(type === "code" ? { outputs: [], execution_count: null } : {}),
  });
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: "python3", display_name: "Python 3 (ipykernel)", language: "python" },
      language_info: { name: "python" },
    },
    cells: [cell("markdown", kind.intro), cell("code", kind.code)],
  };
}

/** "Agent builder.ipynb", else "Agent builder 1.ipynb", ...: never overwrite a user's file. */
async function freePath(contents: Contents.IManager, folder: string, title: string): Promise<string> {
  for (let n = 0; n < 1000; n++) {
    const path = PathExt.join(folder, n ? `${title} ${n}.ipynb` : `${title}.ipynb`);
    try {
      await contents.get(path, { content: false });
    } catch {
      return path;
    }
  }
  throw new Error(`No free name for "${title}" in ${folder || "the root folder"}`);
}

/** Write the widget's notebook into ``folder``, open it and run it; the panel it opened. */
export async function openWidgetNotebook(
  docManager: IDocumentManager,
  contents: Contents.IManager,
  folder: string,
  kind: WidgetKind,
): Promise<NotebookPanel> {
  const path = await freePath(contents, folder, kind.title);
  await contents.save(path, { type: "notebook", format: "json", content: notebookFor(kind) });
  const panel = docManager.open(path, "Notebook", { name: "python3" }) as NotebookPanel | undefined;
  if (!panel) throw new Error(`JupyterLab could not open ${path}`);
  await panel.context.ready;
  await panel.sessionContext.ready;
  await NotebookActions.runAll(panel.content, panel.sessionContext);
  return panel;
}
