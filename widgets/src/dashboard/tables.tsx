// The dashboard's tables: runs (live or latest) with their buttons, agents with a Run button, schedules.
import type { AgentRow, Command, RunRow, ScheduleRow } from "./types";

type Send = (command: Command) => void;

function when(iso: string): string {
  return iso ? iso.slice(0, 19).replace("T", " ") : "";
}

function RunButtons(props: { run: RunRow; send: Send }) {
  const { run, send } = props;
  const label = `${run.workflow} run ${run.id.slice(0, 8)}`;
  return (
    <span className="ow-actions">
      <button onClick={() => send({ type: "open", id: run.id })} aria-label={`Open ${label}`}>
        Open
      </button>
      {run.status === "waiting" ? (
        <>
          <button className="ow-primary" onClick={() => send({ type: "approve", id: run.id })} aria-label={`Approve ${label}`}>
            Approve
          </button>
          <button onClick={() => send({ type: "reject", id: run.id })} aria-label={`Reject ${label}`}>
            Reject
          </button>
        </>
      ) : null}
      {["queued", "running", "waiting"].includes(run.status) ? (
        <button onClick={() => send({ type: "cancel", id: run.id })} aria-label={`Cancel ${label}`}>
          Cancel
        </button>
      ) : null}
      {["failed", "cancelled", "timed_out"].includes(run.status) ? (
        <button onClick={() => send({ type: "retry", id: run.id })} aria-label={`Retry ${label}`}>
          Retry
        </button>
      ) : null}
    </span>
  );
}

export function RunsTable(props: { runs: RunRow[]; send: Send; live?: boolean; empty: string }) {
  if (props.runs.length === 0) return <p className="ow-muted">{props.empty}</p>;
  return (
    <table className={props.live ? "ow-table ow-live-runs" : "ow-table latest-runs"}>
      <thead>
        <tr>
          <th scope="col">Run</th>
          <th scope="col">Status</th>
          <th scope="col">Agent</th>
          <th scope="col">Workflow</th>
          <th scope="col">Started</th>
          <th scope="col">Actions</th>
        </tr>
      </thead>
      <tbody>
        {props.runs.map((run) => (
          <tr key={run.id} data-execution-id={run.id} data-status={run.status}>
            <td>
              <code>{run.id.slice(0, 8)}</code>
            </td>
            <td>
              <span className={`ow-badge ow-status-${run.status}`}>{run.status}</span>
              {run.question ? <div className="ow-question">{run.question}</div> : null}
            </td>
            <td>{run.agent}</td>
            <td>
              {run.workflow} v{run.version}
            </td>
            <td>{when(run.created_at)}</td>
            <td>
              <RunButtons run={run} send={props.send} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function AgentsTable(props: { agents: AgentRow[]; workflows: { id: string; name: string; agent_id: string }[]; send: Send }) {
  if (props.agents.length === 0) return <p className="ow-muted">No agents yet: build one with the agent builder.</p>;
  return (
    <table className="ow-table ow-agents">
      <thead>
        <tr>
          <th scope="col">Agent</th>
          <th scope="col">Framework</th>
          <th scope="col">Last run</th>
          <th scope="col">Success rate</th>
          <th scope="col">Health</th>
          <th scope="col">Run a workflow</th>
        </tr>
      </thead>
      <tbody>
        {props.agents.map((agent) => (
          <tr key={agent.id} data-agent-id={agent.id}>
            <th scope="row">{agent.name}</th>
            <td>{agent.framework}</td>
            <td>{agent.last_run ? `${agent.last_run.status}, ${when(agent.last_run.created_at)}` : "never"}</td>
            <td>{agent.success_rate === null ? "–" : `${Math.round(agent.success_rate * 100)} %`}</td>
            <td>
              <span className={`ow-health ow-health-${agent.health}`}>{agent.health}</span>
            </td>
            <td>
              {props.workflows
                .filter((w) => w.agent_id === agent.id)
                .map((w) => (
                  <button key={w.id} onClick={() => props.send({ type: "run", id: w.id })} aria-label={`Run ${w.name}`}>
                    ▶ {w.name}
                  </button>
                ))}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function SchedulesTable(props: { schedules: ScheduleRow[]; send: Send }) {
  if (props.schedules.length === 0) return <p className="ow-muted">No schedules.</p>;
  return (
    <table className="ow-table ow-schedules">
      <thead>
        <tr>
          <th scope="col">Workflow</th>
          <th scope="col">When</th>
          <th scope="col">Next run</th>
          <th scope="col">State</th>
        </tr>
      </thead>
      <tbody>
        {props.schedules.map((s) => (
          <tr key={s.id} data-schedule-id={s.id}>
            <td>{s.name ? `${s.name} (${s.workflow})` : s.workflow}</td>
            <td>
              <code>{s.cron}</code> {s.timezone}
            </td>
            <td>{s.enabled ? when(s.next_run_at) : "paused"}</td>
            <td>
              <button
                onClick={() => props.send({ type: "schedule", id: s.id, enabled: !s.enabled })}
                aria-label={`${s.enabled ? "Pause" : "Resume"} the schedule of ${s.workflow}`}
              >
                {s.enabled ? "Pause" : "Resume"}
              </button>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
