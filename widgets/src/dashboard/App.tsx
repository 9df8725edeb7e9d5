// The dashboard: header (who, health, window), counts, the live list, charts, agents, latest runs,
// schedules, and the run opened in the execution view. Every button sends a command to the Python side.
import { useModel, useModelState } from "@anywidget/react";
import { useMemo } from "react";
import { ExecutionPanel, type RunCommand } from "../shared/ExecutionPanel";
import type { RunState } from "../shared/types";
import { Chart } from "./Chart";
import { durationSpec, perHourSpec, tokensSpec } from "./charts";
import { AgentsTable, RunsTable, SchedulesTable } from "./tables";
import type { Board, Command } from "./types";

const STATUSES = ["queued", "running", "waiting", "succeeded", "failed", "cancelled", "timed_out"];

export function App() {
  const model = useModel();
  const [board] = useModelState<Board>("board");
  const [run] = useModelState<RunState>("run");
  const send = (command: Command) => model.send(command);
  // each sync brings new arrays: key the specs by their data's text, so a chart is drawn again only
  // when its numbers change (Vega's embed is the page's heaviest work; a live update must not wait on it)
  const hoursKey = JSON.stringify([board.per_hour, board.hours]);
  const durationsKey = JSON.stringify(board.durations);
  const tokensKey = JSON.stringify(board.tokens);
  const perHour = useMemo(() => perHourSpec(board), [hoursKey]);
  const durations = useMemo(() => durationSpec(board), [durationsKey]);
  const tokens = useMemo(() => tokensSpec(board), [tokensKey]);
  if (board.error) {
    return (
      <div className="ow-root ow-dashboard">
        <p className="ow-dash-error" role="alert">{board.error}</p>
      </div>
    );
  }
  const empty = (board.latest ?? []).length === 0;
  return (
    <div className="ow-root ow-dashboard">
      <header className="ow-dash-header">
        <h2>
          {board.org?.name ?? ""} <span className="ow-muted">— dashboard of </span>
          <strong className="dashboard-user">{board.user ?? ""}</strong>
        </h2>
        <span className={`ow-health ow-health-${board.health?.status ?? "unknown"}`}>
          Platform: {board.health?.status ?? "unknown"}
        </span>
        <label>
          Window{" "}
          <select value={board.hours ?? 24} onChange={(e) => send({ type: "window", hours: Number(e.target.value) })}>
            {(board.windows ?? [24]).map((h) => (
              <option key={h} value={h}>
                last {h < 48 ? `${h} h` : `${h / 24} days`}
              </option>
            ))}
          </select>
        </label>
        <p className="ow-dash-message" role="status" aria-live="polite">
          {board.message ?? ""}
        </p>
      </header>
      <ul className="ow-counts" aria-label="Runs by status">
        {STATUSES.map((status) => (
          <li key={status} className={`ow-count ow-status-${status}`}>
            <span className={`ow-count-number count-${status}`}>{board.counts?.[status] ?? 0}</span>
            <span>{status.replace("_", " ")}</span>
          </li>
        ))}
      </ul>
      <section aria-labelledby="ow-live-title" className="ow-live">
        <h3 id="ow-live-title">Running, queued and waiting</h3>
        <RunsTable runs={board.active ?? []} send={send} live empty="Nothing is running." />
      </section>
      <section className="ow-charts" aria-label="Charts">
        <Chart spec={perHour} label={`Runs per hour by status, last ${board.hours ?? 24} hours`} className="ow-chart-hours" />
        {(board.durations ?? []).length ? (
          <Chart spec={durations} label="Duration per framework, p50 and p95 (seconds)" className="ow-chart-durations" />
        ) : (
          <p className="ow-muted">No finished run in this window: no durations yet.</p>
        )}
        {(board.tokens ?? []).length ? (
          <Chart spec={tokens} label="Model tokens per framework, prompt and completion" className="ow-chart-tokens" />
        ) : (
          <p className="ow-muted">No run in this window recorded model tokens.</p>
        )}
      </section>
      <section aria-labelledby="ow-agents-title">
        <h3 id="ow-agents-title">Agents</h3>
        <AgentsTable agents={board.agents ?? []} workflows={board.workflows ?? []} send={send} />
      </section>
      <section aria-labelledby="ow-latest-title">
        <h3 id="ow-latest-title">Latest runs</h3>
        {empty ? (
          <p>No executions yet: run an agent above.</p>
        ) : (
          <RunsTable runs={board.latest ?? []} send={send} empty="" />
        )}
      </section>
      <section aria-labelledby="ow-schedules-title">
        <h3 id="ow-schedules-title">Schedules</h3>
        <SchedulesTable schedules={board.schedules ?? []} send={send} />
      </section>
      {run && run.execution_id ? (
        <section aria-label="Opened run" className="ow-opened">
          <button onClick={() => send({ type: "close" })}>Close the run</button>
          <div className="ow-opened-panel">
            <ExecutionPanel run={run} onCommand={(command: RunCommand) => model.send({ type: "run_command", command })} />
          </div>
        </section>
      ) : null}
    </div>
  );
}
