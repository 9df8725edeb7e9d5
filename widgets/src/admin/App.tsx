// The admin panel, read-only: what the API shows the caller about one organization.
import { useModel, useModelState } from "@anywidget/react";

interface Limits {
  cpu: number;
  memory_mib: number;
  gpu_count: number;
  gpu_type: string | null;
  max_concurrent_executions: number;
  max_agents: number;
}

interface Org {
  error?: string;
  name?: string;
  role?: string;
  personal?: boolean;
  tier?: Limits & { name: string; title: string };
  limits?: Limits;
  usage?: { running: number; agents: number };
  members?: { user_id: string; name: string; username: string; role: string; source: string }[];
  integrations?: { id: string; name: string; kind: string; has_secret: boolean }[];
  schedules?: { id: string; workflow: string; cron: string; timezone: string; enabled: boolean }[];
  can_manage?: boolean;
}

export function App() {
  const model = useModel();
  const [org] = useModelState<Org>("org");
  if (org.error) {
    return (
      <div className="ow-root ow-dashboard ow-admin">
        <p className="ow-dash-error" role="alert">{org.error}</p>
      </div>
    );
  }
  const limits = org.limits;
  return (
    <div className="ow-root ow-dashboard ow-admin">
      <header className="ow-dash-header">
        <h2>
          {org.name} <span className="ow-muted">— administration</span>
        </h2>
        <span className="ow-admin-role">Your role: {org.role}</span>
        {org.can_manage ? null : <span className="ow-muted">(read-only: owners and admins manage)</span>}
        <button onClick={() => model.send({ type: "reload" })}>Reload</button>
      </header>
      <section aria-labelledby="ow-tier-title">
        <h3 id="ow-tier-title">Tier and limits</h3>
        <p>
          Tier <strong className="ow-tier">{org.tier?.title ?? ""}</strong>
        </p>
        {limits ? (
          <table className="ow-table ow-limits">
            <thead>
              <tr>
                <th scope="col">Resource</th>
                <th scope="col">In use</th>
                <th scope="col">Limit</th>
              </tr>
            </thead>
            <tbody>
              <tr>
                <th scope="row">Concurrent runs</th>
                <td>{org.usage?.running ?? 0}</td>
                <td>{limits.max_concurrent_executions}</td>
              </tr>
              <tr>
                <th scope="row">Agents</th>
                <td>{org.usage?.agents ?? 0}</td>
                <td>{limits.max_agents}</td>
              </tr>
              <tr>
                <th scope="row">CPU per run</th>
                <td>–</td>
                <td>{limits.cpu}</td>
              </tr>
              <tr>
                <th scope="row">Memory per run</th>
                <td>–</td>
                <td>{limits.memory_mib} MiB</td>
              </tr>
              <tr>
                <th scope="row">GPUs per run</th>
                <td>–</td>
                <td>{limits.gpu_count ? `${limits.gpu_count} × ${limits.gpu_type ?? "GPU"}` : "none"}</td>
              </tr>
            </tbody>
          </table>
        ) : null}
      </section>
      <section aria-labelledby="ow-members-title">
        <h3 id="ow-members-title">Members</h3>
        <table className="ow-table ow-members">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">User</th>
              <th scope="col">Role</th>
              <th scope="col">From</th>
            </tr>
          </thead>
          <tbody>
            {(org.members ?? []).map((m) => (
              <tr key={m.user_id} data-user={m.username}>
                <th scope="row">{m.name}</th>
                <td>{m.username}</td>
                <td className="ow-member-role">{m.role}</td>
                <td>{m.source}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section aria-labelledby="ow-integrations-title">
        <h3 id="ow-integrations-title">Integrations</h3>
        {(org.integrations ?? []).length === 0 ? (
          <p className="ow-muted">No integrations.</p>
        ) : (
          <table className="ow-table ow-integrations">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Kind</th>
                <th scope="col">Secret</th>
              </tr>
            </thead>
            <tbody>
              {(org.integrations ?? []).map((i) => (
                <tr key={i.id}>
                  <th scope="row">{i.name}</th>
                  <td>{i.kind}</td>
                  <td>{i.has_secret ? "stored (write-only)" : "none"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section aria-labelledby="ow-admin-schedules-title">
        <h3 id="ow-admin-schedules-title">Schedules</h3>
        {(org.schedules ?? []).length === 0 ? (
          <p className="ow-muted">No schedules.</p>
        ) : (
          <ul>
            {(org.schedules ?? []).map((s) => (
              <li key={s.id}>
                {s.workflow}: <code>{s.cron}</code> {s.timezone} {s.enabled ? "" : "(paused)"}
              </li>
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}
