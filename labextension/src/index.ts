/**
 * Orchestrator in JupyterLab: launcher cards and palette entries for the agent builder, the
 * dashboard and the admin panel; "Deploy as workflow…" and "Schedule…" on a notebook, from the
 * file browser's context menu, the notebook's toolbar (schema/plugin.json) and the palette.
 */
import type { JupyterFrontEnd, JupyterFrontEndPlugin } from "@jupyterlab/application";
import { Dialog, ICommandPalette, Notification, showDialog } from "@jupyterlab/apputils";
import { PathExt } from "@jupyterlab/coreutils";
import { IDocumentManager } from "@jupyterlab/docmanager";
import { IDefaultFileBrowser } from "@jupyterlab/filebrowser";
import { ILauncher } from "@jupyterlab/launcher";
import { INotebookTracker } from "@jupyterlab/notebook";

import { deploy, notebookInfo, ProblemError } from "./api";
import { DEFAULT_CRON, DeployForm, type DialogState } from "./dialog";
import { adminIcon, builderIcon, dashboardIcon, deployIcon, scheduleIcon } from "./icons";
import { KINDS, openWidgetNotebook } from "./open";

const CATEGORY = "Orchestrator";
const ICONS = { builder: builderIcon, dashboard: dashboardIcon, admin: adminIcon } as const;
export const COMMANDS = {
  deploy: "orchestrator:deploy-notebook",
  schedule: "orchestrator:schedule-notebook",
  open: (kind: string) => `orchestrator:open-${kind}`,
};

interface Context {
  app: JupyterFrontEnd;
  docManager: IDocumentManager;
  browser: IDefaultFileBrowser | null;
  tracker: INotebookTracker | null;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The notebook a command acts on: the one named, the one selected in the file browser, or the current one. */
function targetPath(ctx: Context, args: Record<string, unknown>): string | null {
  if (typeof args.path === "string") return args.path;
  if (args.from === "browser" && ctx.browser) {
    const selected = ctx.browser.selectedItems().next();
    if (!selected.done && selected.value.type === "notebook") return selected.value.path;
  }
  return ctx.tracker?.currentWidget?.context.path ?? null;
}

/** Save the notebook first when it is open with unsaved changes: what is deployed is what the user sees. */
async function saveIfOpen(ctx: Context, path: string): Promise<void> {
  const widget = ctx.docManager.findWidget(path);
  const context = widget ? ctx.docManager.contextForWidget(widget) : undefined;
  if (context?.model.dirty) await context.save();
}

async function deployDialog(ctx: Context, path: string, scheduled: boolean): Promise<void> {
  await saveIfOpen(ctx, path);
  const info = await notebookInfo(path);
  const stem = PathExt.basename(path, PathExt.extname(path));
  let state: DialogState = {
    info,
    scheduled,
    agent: stem,
    cron: DEFAULT_CRON,
    timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
    values: {},
    error: null,
    fields: {},
  };
  for (;;) {
    const verb = scheduled ? "Schedule" : "Deploy";
    const result = await showDialog({
      title: scheduled ? `Schedule ${info.name}` : `Deploy ${info.name} as a workflow`,
      body: new DeployForm(state),
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: verb, ariaLabel: `${verb} ${info.name}` })],
      focusNodeSelector: "input",
    });
    if (!result.button.accept || !result.value) return;
    const { request, state: asked } = result.value;
    try {
      const done = await deploy(request);
      Notification.success(done.summary, {
        autoClose: 10000,
        actions: [{ label: "Open the dashboard", callback: () => void ctx.app.commands.execute(COMMANDS.open("dashboard")) }],
      });
      return;
    } catch (error) {
      const fields = error instanceof ProblemError ? error.fields : {};
      state = { ...asked, error: message(error), fields };
    }
  }
}

function addOpenCommands(ctx: Context, palette: ICommandPalette | null, launcher: ILauncher | null): void {
  KINDS.forEach((kind, rank) => {
    const command = COMMANDS.open(kind.id);
    ctx.app.commands.addCommand(command, {
      label: (args) => (args.isPalette ? `Open the ${kind.title.toLowerCase()}` : kind.title),
      caption: kind.caption,
      icon: (args) => (args.isPalette ? undefined : ICONS[kind.id as keyof typeof ICONS]),
      execute: async () => {
        try {
          const folder = ctx.browser?.model.path ?? "";
          return await openWidgetNotebook(ctx.docManager, ctx.app.serviceManager.contents, folder, kind);
        } catch (error) {
          Notification.error(`${kind.title}: ${message(error)}`);
          return undefined;
        }
      },
    });
    launcher?.add({ command, category: CATEGORY, rank });
    palette?.addItem({ command, category: CATEGORY, args: { isPalette: true } });
  });
}

function addDeployCommands(ctx: Context, palette: ICommandPalette | null): void {
  const specs = [
    { id: COMMANDS.deploy, label: "Deploy as workflow…", icon: deployIcon, scheduled: false },
    { id: COMMANDS.schedule, label: "Schedule…", icon: scheduleIcon, scheduled: true },
  ];
  for (const spec of specs) {
    ctx.app.commands.addCommand(spec.id, {
      label: (args) => (args.isPalette ? `Orchestrator: ${spec.label}` : spec.label),
      caption: spec.scheduled
        ? "Deploy this notebook as an agent's workflow and run it on a schedule"
        : "Deploy this notebook as the next version of an agent's workflow",
      icon: spec.icon,
      execute: async (args) => {
        const path = targetPath(ctx, args);
        if (!path) {
          Notification.warning(`${spec.label.replace("…", "")}: open a notebook, or select one in the file browser, first`);
          return;
        }
        try {
          await deployDialog(ctx, path, spec.scheduled);
        } catch (error) {
          Notification.error(`${spec.label.replace("…", "")}: ${message(error)}`);
        }
      },
    });
    palette?.addItem({ command: spec.id, category: CATEGORY, args: { isPalette: true } });
    ctx.app.contextMenu.addItem({
      command: spec.id,
      selector: '.jp-DirListing-item[data-file-type="notebook"]',
      rank: 3,
      args: { from: "browser" },
    });
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: "orchestrator-jupyterlab:plugin",
  description: "Orchestrator's launcher cards, commands and notebook deploy/schedule dialog",
  autoStart: true,
  requires: [IDocumentManager],
  optional: [ICommandPalette, ILauncher, IDefaultFileBrowser, INotebookTracker],
  activate: (
    app: JupyterFrontEnd,
    docManager: IDocumentManager,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    browser: IDefaultFileBrowser | null,
    tracker: INotebookTracker | null,
  ) => {
    const ctx: Context = { app, docManager, browser, tracker };
    addOpenCommands(ctx, palette, launcher);
    addDeployCommands(ctx, palette);
    // the notebook toolbar's Deploy and Schedule buttons: schema/plugin.json (jupyter.lab.toolbars, rank 50-51)
  },
};

export default plugin;
