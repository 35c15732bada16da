// Operators (administrators only): operator accounts with a role per
// project; invite by email (pending invitations listed), create, change
// roles, end sessions, reset a lost authenticator, delete.
import { useState } from "preact/hooks";
import type { OperatorAccountJson } from "@cairn/gen/operators_pb.js";
import type { ProjectJson } from "@cairn/gen/projects_pb.js";
import { api, all, when } from "../api.js";
import { ConfirmDelete, Empty, ErrorBox, Loading, useAction, useLoad } from "../ui.js";

const roleNames = ["", "viewer", "developer", "owner"];

type Roles = Record<string, string>;

function rolesOf(o: OperatorAccountJson): Roles {
  const r: Roles = {};
  for (const x of o.roles ?? []) r[x.projectId ?? ""] = x.role ?? "";
  return r;
}

function rolesIn(r: Roles): { projectId: string; role: string }[] {
  return Object.entries(r).filter(([, role]) => role).map(([projectId, role]) => ({ projectId, role }));
}

export function Operators() {
  const list = useLoad(() => all(async (pageToken) => {
    const r = await api.operators.listOperators({ pageSize: 500, pageToken });
    return { items: r.operators ?? [], next: r.nextPageToken ?? "" };
  }), []);
  const projects = useLoad(() => all(async (pageToken) => {
    const r = await api.projects.listProjects({ pageSize: 500, pageToken });
    return { items: r.projects ?? [], next: r.nextPageToken ?? "" };
  }), []);
  const [editing, setEditing] = useState<OperatorAccountJson | null>(null);
  const [deleting, setDeleting] = useState<OperatorAccountJson | null>(null);
  const act = useAction();
  return (
    <section class="screen">
      <h2>Operators</h2>
      <p class="muted">People who sign in to this console with email and password. Each holds a role per project:
        <strong> viewer</strong> reads, <strong>developer</strong> reads and writes (not API keys),
        <strong> owner</strong> does everything in the project, deleting and exporting it included.
        An administrator does everything the operator key does.</p>
      <InviteOperator projects={projects.data ?? []} onInvited={list.reload} />
      <CreateOperator projects={projects.data ?? []} onCreated={list.reload} />
      <Loading loading={list.loading} />
      <ErrorBox error={list.error ?? act.error} />
      {list.data?.length === 0 ? <Empty>No operator account yet.</Empty> : null}
      {list.data && list.data.length > 0 ? (
        <table id="operators">
          <thead><tr><th>Email</th><th>Name</th><th>Roles</th><th>Sessions</th><th>Created</th><th /></tr></thead>
          <tbody>{list.data.map((o) => (
            <tr key={o.id} data-operator={o.email}>
              <td>{o.email}{o.invitationPending ? <> <span class="chip invited">invited · expires {when(o.invitationExpiresAt)}</span></> : null}
                {o.mfa ? <> <span class="chip ok">2FA</span></> : null}</td><td>{o.name}</td>
              <td class="scopes">{o.admin ? <span class="chip">administrator</span> : null}
                {(o.roles ?? []).map((r) => <span class="chip" key={r.projectId}>{r.projectId}: {r.role}</span>)}</td>
              <td class="num">{o.sessions ?? 0}</td>
              <td class="muted">{when(o.createdAt)}</td>
              <td>
                <button type="button" class="small edit-roles" onClick={() => setEditing(o)}>Roles</button>{" "}
                <button type="button" class="small revoke" disabled={!o.sessions} onClick={() => void act.run(async () => {
                  await api.operators.revokeOperatorSessions({ operatorId: o.id ?? "" });
                  list.reload();
                })}>End sessions</button>{" "}
                {o.mfa ? <><button type="button" class="small reset-mfa" onClick={() => void act.run(async () => {
                  if (!confirm(`Switch off two-factor sign-in of ${o.email} and end its sessions?`)) return;
                  await api.operators.resetOperatorMfa({ operatorId: o.id ?? "" });
                  list.reload();
                })}>Reset 2FA</button>{" "}</> : null}
                {o.invitationPending ? <button type="button" class="danger small revoke-invitation" onClick={() => void act.run(async () => {
                  await api.operators.revokeOperatorInvitation({ operatorId: o.id ?? "" });
                  list.reload();
                })}>Revoke invitation</button> : <button type="button" class="danger small" onClick={() => setDeleting(o)}>Delete</button>}
              </td>
            </tr>
          ))}</tbody>
        </table>
      ) : null}
      {editing ? <EditRoles o={editing} projects={projects.data ?? []} onClose={() => setEditing(null)} onSaved={() => { setEditing(null); list.reload(); }} /> : null}
      {deleting ? <ConfirmDelete what="operator account" id={deleting.email ?? ""} onClose={() => setDeleting(null)}
        onConfirm={async () => { await api.operators.deleteOperator({ operatorId: deleting.id ?? "" }); list.reload(); }} /> : null}
    </section>
  );
}

/** A role picker: one select per project. */
function RolePicker({ projects, roles, onChange }: { projects: ProjectJson[]; roles: Roles; onChange: (r: Roles) => void }) {
  if (projects.length === 0) return <p class="muted">No project yet.</p>;
  return (
    <fieldset class="roles-picker">
      <legend>Role per project</legend>
      {projects.map((p) => (
        <label key={p.id} class="check">{p.id}{" "}
          <select name={"role-" + p.id} value={roles[p.id ?? ""] ?? ""} onChange={(e) => onChange({ ...roles, [p.id ?? ""]: e.currentTarget.value })}>
            {roleNames.map((r) => <option key={r} value={r}>{r || "no access"}</option>)}
          </select>
        </label>
      ))}
    </fieldset>
  );
}

function InviteOperator({ projects, onInvited }: { projects: ProjectJson[]; onInvited: () => void }) {
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [admin, setAdmin] = useState(false);
  const [roles, setRoles] = useState<Roles>({});
  const [result, setResult] = useState("");
  const [link, setLink] = useState("");
  const act = useAction();
  return (
    <form class="card" id="invite-operator" onSubmit={async (e) => {
      e.preventDefault();
      setResult(""); setLink("");
      let msg = "", url = "";
      if (await act.run(async () => {
        const r = await api.operators.inviteOperator({ email, name, admin, roles: rolesIn(roles) });
        url = r.invitationUrl ?? "";
        msg = r.existingAccount ? `${r.operator?.email} has an account: the roles were added.`
          : r.emailed ? `Invitation mailed to ${r.operator?.email}; the link works once, for 7 days.`
          : `No mail server is set for this instance (--smtp-host): pass this one-time link to ${r.operator?.email} privately.`;
      })) {
        setResult(msg); setLink(url);
        setEmail(""); setName(""); setAdmin(false); setRoles({});
        onInvited();
      }
    }}>
      <h3>Invite by email</h3>
      <p class="muted">The invitee gets a one-time link (7 days) to choose a password. An email that has an account gets the roles at once.</p>
      <div class="row">
        <label>Email <input name="invite-email" type="email" autoComplete="off" value={email} onInput={(e) => setEmail(e.currentTarget.value)} /></label>
        <label>Name <input name="invite-name" value={name} onInput={(e) => setName(e.currentTarget.value)} /></label>
        <label class="check"><input type="checkbox" name="invite-admin" checked={admin} onChange={() => setAdmin(!admin)} /> administrator</label>
      </div>
      {admin ? null : <RolePicker projects={projects} roles={roles} onChange={setRoles} />}
      <ErrorBox error={act.error} />
      {result ? <p class="ok" id="invite-result">{result}</p> : null}
      {link ? <p><input id="invite-link" style="width: 100%" readOnly value={link} onFocus={(e) => e.currentTarget.select()} /></p> : null}
      <button type="submit" class="primary" disabled={!email || act.busy}>Invite</button>
    </form>
  );
}

function CreateOperator({ projects, onCreated }: { projects: ProjectJson[]; onCreated: () => void }) {
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [admin, setAdmin] = useState(false);
  const [roles, setRoles] = useState<Roles>({});
  const act = useAction();
  return (
    <form class="card" id="create-operator" onSubmit={async (e) => {
      e.preventDefault();
      if (await act.run(() => api.operators.createOperator({ email, name, password, admin, roles: rolesIn(roles) }))) {
        setEmail(""); setName(""); setPassword(""); setAdmin(false); setRoles({});
        onCreated();
      }
    }}>
      <h3>New operator account</h3>
      <div class="row">
        <label>Email <input name="email" type="email" autoComplete="off" value={email} onInput={(e) => setEmail(e.currentTarget.value)} /></label>
        <label>Name <input name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} /></label>
        <label>Initial password <input name="password" type="password" autoComplete="new-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} /></label>
        <label class="check"><input type="checkbox" name="admin" checked={admin} onChange={() => setAdmin(!admin)} /> administrator</label>
      </div>
      {admin ? null : <RolePicker projects={projects} roles={roles} onChange={setRoles} />}
      <ErrorBox error={act.error} />
      <button type="submit" class="primary" disabled={act.busy}>Create account</button>
    </form>
  );
}

function EditRoles({ o, projects, onClose, onSaved }: { o: OperatorAccountJson; projects: ProjectJson[]; onClose: () => void; onSaved: () => void }) {
  const [roles, setRoles] = useState<Roles>(rolesOf(o));
  const [admin, setAdmin] = useState(o.admin ?? false);
  const act = useAction();
  return (
    <div class="modal-backdrop">
      <form class="modal" id="edit-roles" role="dialog" aria-label="Roles" onSubmit={async (e) => {
        e.preventDefault();
        if (await act.run(() => api.operators.updateOperator({ operatorId: o.id ?? "", admin, roles: { roles: rolesIn(roles) } }))) onSaved();
      }}>
        <h3>Roles of {o.email}</h3>
        <p class="muted">A change applies to the account's very next request.</p>
        <label class="check"><input type="checkbox" name="admin" checked={admin} onChange={() => setAdmin(!admin)} /> administrator</label>
        <RolePicker projects={projects} roles={roles} onChange={setRoles} />
        <ErrorBox error={act.error} />
        <div class="actions">
          <button type="button" onClick={onClose}>Cancel</button>
          <button type="submit" class="primary" disabled={act.busy}>Save</button>
        </div>
      </form>
    </div>
  );
}
