/**
 * The server side of the extension (orchestrator_widgets.lab, a jupyter-server extension of the
 * same install): it reads the notebook and deploys it through the Orchestrator API as the
 * logged-in user. Nothing here holds a token: requests carry the Lab page's own credentials.
 */
import { URLExt } from "@jupyterlab/coreutils";
import { ServerConnection } from "@jupyterlab/services";

/** One name the notebook's `parameters` cell assigns, with its literal default and type. */
export interface NotebookParameter {
  name: string;
  default: unknown;
  type: string;
}

/** What the dialog needs to know about a notebook before deploying it. */
export interface NotebookInfo {
  path: string;
  name: string;
  parameters: NotebookParameter[];
  parameters_error: string | null;
  /** names of the notebook agents the user can already deploy to */
  agents: string[];
  /** why the agents could not be read (the API is unreachable, ...), or null */
  api_error: string | null;
}

/** What the user asked for in the dialog. */
export interface DeployRequest {
  path: string;
  agent: string;
  schedule: { cron: string; timezone: string; inputs: Record<string, unknown> } | null;
}

/** What a deploy made (the summary is the same text `jupyter orchestrator deploy` prints). */
export interface DeployResult {
  summary: string;
  agent: { id: string; name: string };
  workflow: { id: string; name: string; version: number };
  schedule: { id: string; cron: string; timezone: string; next_run_at: string | null } | null;
}

/** A problem+json answer, with the fields at fault. */
export class ProblemError extends Error {
  constructor(
    message: string,
    readonly fields: Record<string, string>,
  ) {
    super(message);
  }
}

async function call<T>(path: string, init: RequestInit): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, "orchestrator-lab", path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ProblemError(`The server cannot be reached: ${String(error)}`, {});
  }
  const text = await response.text();
  let body: Record<string, unknown>;
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = { detail: text.slice(0, 300) };
  }
  if (!response.ok) {
    const fields: Record<string, string> = {};
    for (const item of (body.errors as { field?: string; message?: string }[] | undefined) ?? []) {
      if (item.field) fields[item.field] = item.message ?? "invalid";
    }
    const title = typeof body.title === "string" ? body.title : response.statusText;
    const detail = typeof body.detail === "string" ? body.detail : "";
    throw new ProblemError(detail ? `${title}: ${detail}` : title, fields);
  }
  return body as T;
}

export function notebookInfo(path: string): Promise<NotebookInfo> {
  return call<NotebookInfo>(`notebook?path=${encodeURIComponent(path)}`, { method: "GET" });
}

export function deploy(request: DeployRequest): Promise<DeployResult> {
  return call<DeployResult>("deploy", { method: "POST", body: JSON.stringify(request) });
}
