// The admin panel: what the API shows the caller about one organization; owners and admins change
// members, roles and integrations (each change goes through the API's permission checks, in Python).
import { useModel, useModelState } from "@anywidget/react";
import { useState } from "react";

const ROLES = ["owner", "admin", "developer", "viewer"];

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
  usage?: Usage;
  members?: { user_id: string; name: string; username: string; role: string; source: string }[];
  integrations?: { id: string; name: string; kind: string; has_secret: boolean; state?: string }[];
  schedules?: { id: string; workflow: string; cron: string; timezone: string; enabled: boolean }[];
  can_manage?: boolean;
  outside?: string;
  platform_admin?: boolean;
  organizations?: Listed[];
}

/** A row of a platform admin's list of every organization. */
interface Listed {
  id: string;
  name: string;
  personal: boolean;
  tier: string;
  members: number;
  agents: number;
  concurrency: number;
}

function EveryOrganization({ rows }: { rows: Listed[] }) {
  return (
    <section aria-labelledby="ow-every-title">
      <h3 id="ow-every-title">Every organization (you are a platform admin)</h3>
      <p className="ow-muted">
        Open one with <code>Admin(&quot;its id&quot;)</code>; its tier and limits change under <code>/admin</code>.
      </p>
      <table className="ow-table ow-every">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Tier</th>
            <th scope="col">Members</th>
            <th scope="col">Agents</th>
            <th scope="col">Concurrent runs</th>
            <th scope="col">Id</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((o) => (
            <tr key={o.id} data-org={o.id}>
              <th scope="row">
                {o.name}
                {o.personal ? <span className="ow-muted"> (personal)</span> : null}
              </th>
              <td>{o.tier}</td>
              <td>{o.members}</td>
              <td>{o.agents}</td>
              <td>{o.concurrency}</td>
              <td>
                <code>{o.id}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

interface Figure {
  used: number;
  limit: number | null;
  enforced: boolean;
}

interface Usage {
  running: number;
  agents: number;
  month?: string;
  runs?: Figure;
  concurrency?: Figure;
  tokens?: Figure;
  gpu_seconds?: Figure;
  hidden?: string;
}

type Send = (message: Record<string, string>) => void;

const count = (value: number) => value.toLocaleString("en-US");

/** One resource's row: what was used, against the limit ("no limit" when there is none). */
function UsageRow(props: { label: string; name: string; figure?: Figure; unit?: string }) {
  const { figure } = props;
  if (!figure) return null;
  const limit = figure.limit === null ? "no limit" : `${count(figure.limit)}${props.unit ?? ""}`;
  return (
    <tr data-usage={props.name}>
      <th scope="row">{props.label}</th>
      <td className="ow-used">
        {count(figure.used)}
        {props.unit ?? ""}
      </td>
      <td className="ow-limit">
        {limit}
        {figure.enforced || figure.limit === null ? "" : " (allowance, not enforced)"}
      </td>
    </tr>
  );
}

function RolePicker(props: { value: string; label: string; onChange: (role: string) => void }) {
  return (
    <select aria-label={props.label} value={props.value} onChange={(e) => props.onChange(e.target.value)}>
      {ROLES.map((role) => (
        <option key={role} value={role}>
          {role}
        </option>
      ))}
    </select>
  );
}

function InviteForm({ send }: { send: Send }) {
  const [username, setUsername] = useState("");
  const [role, setRole] = useState("developer");
  return (
    <form
      className="ow-admin-form ow-invite"
      onSubmit={(e) => {
        e.preventDefault();
        if (username.trim()) send({ type: "invite", username: username.trim(), role });
        setUsername("");
      }}
    >
      <label>
        User name <input value={username} onChange={(e) => setUsername(e.target.value)} required />
      </label>
      <RolePicker value={role} label="Role of the new member" onChange={setRole} />
      <button type="submit">Invite</button>
    </form>
  );
}

function IntegrationForm({ send }: { send: Send }) {
  const empty = { name: "", base_url: "", model: "", secret: "" };
  const [fields, setFields] = useState(empty);
  const field = (key: keyof typeof empty, label: string, type = "text") => (
    <label>
      {label}{" "}
      <input
        type={type}
        value={fields[key]}
        autoComplete={type === "password" ? "new-password" : "off"}
        required={key !== "secret"}
        onChange={(e) => setFields({ ...fields, [key]: e.target.value })}
      />
    </label>
  );
  return (
    <form
      className="ow-admin-form ow-add-integration"
      onSubmit={(e) => {
        e.preventDefault();
        send({ type: "add_integration", ...fields });
        setFields(empty);
      }}
    >
      {field("name", "Name")}
      {field("base_url", "Base URL")}
      {field("model", "Model")}
      {field("secret", "API key (write-only)", "password")}
      <button type="submit">Add model integration</button>
    </form>
  );
}

export function App() {
  const model = useModel();
  const [org] = useModelState<Org>("org");
  const [status] = useModelState<{ kind: string; message: string }>("status");
  const send: Send = (message) => model.send(message);
  const manage = Boolean(org.can_manage);
  if (org.error) {
    return (
      <div className="ow-root ow-dashboard ow-admin">
        <p className="ow-dash-error" role="alert">{org.error}</p>
      </div>
    );
  }
  const limits = org.limits;
  const usage = org.usage;
  const month = usage?.month ?? "this month";
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
      <p className={`ow-admin-status ow-status-${status?.kind || "none"}`} role="status" aria-live="polite">
        {status?.message ?? ""}
      </p>
      {org.outside ? <p className="ow-admin-outside">{org.outside}</p> : null}
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
              {usage?.concurrency ? (
                <UsageRow label="Concurrent runs (now)" name="concurrency" figure={usage.concurrency} />
              ) : (
                <tr data-usage="concurrency">
                  <th scope="row">Concurrent runs (now)</th>
                  <td className="ow-used">{usage?.running ?? 0}</td>
                  <td className="ow-limit">{limits.max_concurrent_executions}</td>
                </tr>
              )}
              <UsageRow label={`Runs in ${month}`} name="runs" figure={usage?.runs} />
              <UsageRow label={`Model tokens in ${month}`} name="tokens" figure={usage?.tokens} />
              <UsageRow label={`GPU-seconds in ${month}`} name="gpu_seconds" figure={usage?.gpu_seconds} unit=" s" />
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
        {usage?.hidden ? (
          <p className="ow-muted ow-usage-hidden">Usage this month is shown to owners and admins ({usage.hidden}).</p>
        ) : null}
        {usage?.gpu_seconds ? (
          <p className="ow-muted">
            GPU-seconds are the runs&apos; wall-clock time × the tier&apos;s GPUs per run (no run records GPU time yet).
          </p>
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
              {manage ? <th scope="col">Remove</th> : null}
            </tr>
          </thead>
          <tbody>
            {(org.members ?? []).map((m) => (
              <tr key={m.user_id} data-user={m.username}>
                <th scope="row">{m.name}</th>
                <td>{m.username}</td>
                <td className="ow-member-role">
                  {manage ? (
                    <RolePicker
                      value={m.role}
                      label={`Role of ${m.username}`}
                      onChange={(role) => send({ type: "set_role", user_id: m.user_id, role })}
                    />
                  ) : (
                    m.role
                  )}
                </td>
                <td>{m.source}</td>
                {manage ? (
                  <td>
                    <button
                      aria-label={`Remove ${m.username}`}
                      onClick={() => window.confirm(`Remove ${m.username}?`) && send({ type: "remove", user_id: m.user_id })}
                    >
                      Remove
                    </button>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
        {manage ? <InviteForm send={send} /> : null}
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
                <th scope="col">State</th>
                {manage ? <th scope="col">Remove</th> : null}
              </tr>
            </thead>
            <tbody>
              {(org.integrations ?? []).map((i) => (
                <tr key={i.id}>
                  <th scope="row">{i.name}</th>
                  <td>{i.kind}</td>
                  <td>{i.has_secret ? "stored (write-only)" : "none"}</td>
                  <td className={i.state?.startsWith("refused") ? "ow-integration-refused" : undefined}>
                    {i.state ?? ""}
                  </td>
                  {manage ? (
                    <td>
                      <button
                        aria-label={`Remove integration ${i.name}`}
                        onClick={() =>
                          window.confirm(`Remove the integration ${i.name}?`) &&
                          send({ type: "remove_integration", integration_id: i.id })
                        }
                      >
                        Remove
                      </button>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {manage ? <IntegrationForm send={send} /> : null}
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
      {(org.organizations ?? []).length ? <EveryOrganization rows={org.organizations ?? []} /> : null}
    </div>
  );
}
