/**
 * The "Deploy as workflow…" / "Schedule…" dialog: the agent, an optional schedule (a cron
 * expression with a human-readable preview, read in a time zone) and the values of the notebook's
 * `parameters` cell for the scheduled runs. Plain labelled form controls, so a screen reader and
 * the keyboard work as everywhere in Lab.
 */
import { Widget } from "@lumino/widgets";
import cronstrue from "cronstrue";

import type { DeployRequest, NotebookInfo, NotebookParameter } from "./api";

/** What the dialog starts with: the notebook, and the last attempt's values and errors if any. */
export interface DialogState {
  info: NotebookInfo;
  scheduled: boolean;
  agent: string;
  cron: string;
  timezone: string;
  values: Record<string, string>;
  error: string | null;
  fields: Record<string, string>;
}

export const DEFAULT_CRON = "0 9 * * 1-5";

/** The cron expression in words, or why it cannot be read (5 fields: minute hour day month weekday). */
export function describeCron(cron: string): { text: string; ok: boolean } {
  if (cron.trim().split(/\s+/).length !== 5) {
    return { text: "Five fields: minute, hour, day of month, month, day of week.", ok: false };
  }
  try {
    return { text: cronstrue.toString(cron, { use24HourTimeFormat: true, verbose: true }), ok: true };
  } catch (error) {
    return { text: String(error).replace(/^Error:\s*/, ""), ok: false };
  }
}

/** The value a parameter's text box stands for: JSON where it reads as JSON (unless the type is str). */
export function parameterValue(parameter: NotebookParameter, text: string): unknown {
  if (parameter.type === "str") return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function shown(parameter: NotebookParameter): string {
  if (typeof parameter.default === "string") return parameter.default;
  return parameter.default === undefined ? "" : JSON.stringify(parameter.default);
}

function timezones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (key: string) => string[] };
  const known = intl.supportedValuesOf ? intl.supportedValuesOf("timeZone") : [];
  return ["UTC", ...known.filter((zone) => zone !== "UTC")];
}

let counter = 0;

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

/** A labelled control with room for its error (linked by aria-describedby). */
function field(label: string, control: HTMLInputElement | HTMLSelectElement, error?: string, help?: HTMLElement) {
  const id = `orchestrator-field-${++counter}`;
  control.id = id;
  const described: string[] = [];
  const wrapper = element("div", { className: "jp-orchestrator-field" }, element("label", { htmlFor: id }, label));
  wrapper.append(control);
  if (help) {
    help.id = `${id}-help`;
    described.push(help.id);
    wrapper.append(help);
  }
  if (error) {
    const message = element("div", { className: "jp-orchestrator-error", id: `${id}-error` }, error);
    described.push(message.id);
    control.setAttribute("aria-invalid", "true");
    wrapper.append(message);
  }
  if (described.length) control.setAttribute("aria-describedby", described.join(" "));
  return wrapper;
}

/** The dialog's body: Lab's showDialog calls getValue() when the user confirms. */
export class DeployForm extends Widget {
  private agent: HTMLInputElement;
  private scheduled: HTMLInputElement;
  private cron: HTMLInputElement;
  private timezone: HTMLSelectElement;
  private values = new Map<string, HTMLInputElement>();

  constructor(private state: DialogState) {
    super();
    this.addClass("jp-orchestrator-deploy");
    const { info, fields } = state;
    if (state.error) this.node.append(element("div", { className: "jp-orchestrator-error", role: "alert" }, state.error));
    if (info.api_error) this.node.append(element("div", { className: "jp-orchestrator-warning" }, info.api_error));

    this.agent = element("input", { type: "text", value: state.agent, required: true, name: "agent" });
    const agents = element("datalist", { id: `orchestrator-agents-${++counter}` });
    agents.append(...info.agents.map((name) => element("option", { value: name })));
    this.agent.setAttribute("list", agents.id);
    const agentHelp = element("div", { className: "jp-orchestrator-help" }, "An agent of yours, or a new name: it is created.");
    this.node.append(field("Agent", this.agent, fields.agent, agentHelp), agents);

    this.scheduled = element("input", { type: "checkbox", checked: state.scheduled, name: "scheduled" });
    this.scheduled.id = `orchestrator-scheduled-${++counter}`;
    this.node.append(
      element("div", { className: "jp-orchestrator-check" }, this.scheduled, element("label", { htmlFor: this.scheduled.id }, "Run it on a schedule")),
    );

    const schedule = element("fieldset", { className: "jp-orchestrator-schedule" }, element("legend", {}, "Schedule"));
    this.cron = element("input", { type: "text", value: state.cron, name: "cron", spellcheck: false });
    const preview = element("div", { className: "jp-orchestrator-cron-preview" });
    preview.setAttribute("aria-live", "polite");
    const update = () => {
      const described = describeCron(this.cron.value);
      preview.textContent = described.text;
      preview.classList.toggle("jp-orchestrator-error", !described.ok);
    };
    this.cron.addEventListener("input", update);
    update();
    schedule.append(field("Cron expression", this.cron, fields.cron, preview));

    this.timezone = element("select", { name: "timezone" });
    const zones = timezones();
    if (!zones.includes(state.timezone)) zones.unshift(state.timezone);
    this.timezone.append(...zones.map((zone) => element("option", { value: zone, selected: zone === state.timezone }, zone)));
    schedule.append(field("Time zone", this.timezone, fields.timezone));
    schedule.append(this.parameters(info, fields));
    this.node.append(schedule);

    const toggle = () => (schedule.disabled = !this.scheduled.checked);
    this.scheduled.addEventListener("change", toggle);
    toggle();
  }

  private parameters(info: NotebookInfo, fields: Record<string, string>): HTMLElement {
    const box = element("fieldset", { className: "jp-orchestrator-parameters" }, element("legend", {}, "Inputs of the scheduled runs"));
    if (info.parameters_error) box.append(element("div", { className: "jp-orchestrator-error" }, info.parameters_error));
    if (!info.parameters.length && !info.parameters_error) {
      box.append(element("div", { className: "jp-orchestrator-help" }, "The notebook has no cell tagged parameters: its runs take no inputs."));
    }
    for (const parameter of info.parameters) {
      const input = element("input", { type: "text", name: `input-${parameter.name}`, spellcheck: false });
      input.value = this.state.values[parameter.name] ?? shown(parameter);
      this.values.set(parameter.name, input);
      const help = element("div", { className: "jp-orchestrator-help" }, `${parameter.type}, default ${JSON.stringify(parameter.default)}`);
      box.append(field(parameter.name, input, fields[`inputs.${parameter.name}`], help));
    }
    return box;
  }

  /** The request to send, and the state to show again if the server refuses it. */
  getValue(): { request: DeployRequest; state: DialogState } {
    const values: Record<string, string> = {};
    const inputs: Record<string, unknown> = {};
    for (const parameter of this.state.info.parameters) {
      const text = this.values.get(parameter.name)?.value ?? "";
      values[parameter.name] = text;
      inputs[parameter.name] = parameterValue(parameter, text);
    }
    const state: DialogState = {
      ...this.state,
      agent: this.agent.value.trim(),
      scheduled: this.scheduled.checked,
      cron: this.cron.value.trim(),
      timezone: this.timezone.value,
      values,
    };
    const schedule = state.scheduled ? { cron: state.cron, timezone: state.timezone, inputs } : null;
    return { request: { path: state.info.path, agent: state.agent, schedule }, state };
  }
}
