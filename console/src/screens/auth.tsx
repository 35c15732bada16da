// Auth: the project's users (search, create, block, sign out everywhere,
// delete), its teams, and its settings (web platforms, sessions, password
// policy, sign-in methods, SMTP). Secrets are write-only: an empty password
// field keeps the stored one.
import { useEffect, useState } from "preact/hooks";
import type { AuthSettingsJson, OAuthProviderJson } from "@cairn/gen/users_pb.js";
import { api, all, when } from "../api.js";
import { ConfirmDelete, Empty, ErrorBox, Loading, useAction, useLoad } from "../ui.js";

const tabs = [["users", "Users"], ["teams", "Teams"], ["settings", "Settings"]] as const;

export function Auth({ project }: { project: string }) {
  const [tab, setTab] = useState<(typeof tabs)[number][0]>("users");
  return (
    <>
      <h2>Auth</h2>
      <div class="subtabs">
        {tabs.map(([id, label]) => (
          <button key={id} type="button" id={"auth-" + id} class={tab === id ? "tab active" : "tab"} onClick={() => setTab(id)}>{label}</button>
        ))}
      </div>
      {tab === "users" ? <Users project={project} /> : tab === "teams" ? <Teams project={project} /> : <Settings project={project} />}
    </>
  );
}

function Users({ project }: { project: string }) {
  const [search, setSearch] = useState("");
  const [query, setQuery] = useState("");
  const list = useLoad(() => all(async (pageToken) => {
    const r = await api.users.listUsers({ projectId: project, search: query, pageSize: 200, pageToken });
    return { items: r.users ?? [], next: r.nextPageToken ?? "" };
  }, 1000), [project, query]);
  const [deleting, setDeleting] = useState<string | null>(null);
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const act = useAction();
  return (
    <>
      <form class="inline write" id="user-create" onSubmit={async (e) => {
        e.preventDefault();
        if (await act.run(() => api.users.createUser({ projectId: project, email, name, password }))) {
          setEmail(""); setName(""); setPassword(""); list.reload();
        }
      }}>
        <input name="email" type="email" placeholder="email" value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        <input name="name" placeholder="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <input name="password" type="password" autoComplete="new-password" placeholder="password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        <button type="submit" class="primary" disabled={!email || act.busy}>Create user</button>
      </form>
      <ErrorBox error={act.error} />
      <form class="inline" id="user-search" onSubmit={(e) => { e.preventDefault(); setQuery(search.trim()); }}>
        <input name="search" class="wide" placeholder="search by email, name or id" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
        <button type="submit">Search</button>
      </form>
      <Loading loading={list.loading} />
      <ErrorBox error={list.error} />
      {list.data?.length === 0 ? <Empty>No user{query ? " matches " + query : " yet"}.</Empty> : null}
      {list.data?.length ? (
        <table id="users">
          <thead><tr><th>Id</th><th>Email</th><th>Name</th><th>Status</th><th>Created</th><th /></tr></thead>
          <tbody>{list.data.map((u) => (
            <tr key={u.id} data-user={u.id}>
              <td><code>{u.id}</code></td><td>{u.email}</td><td>{u.name}</td>
              <td>{u.blocked ? <span class="chip danger">blocked</span> : u.emailVerified ? "verified" : "unverified"}{u.mfaEnabled ? " · MFA" : ""}</td>
              <td class="muted">{when(u.createdAt)}</td>
              <td class="actions">
                <button type="button" class="small block write" onClick={() => void act.run(async () => {
                  await api.users.updateUser({ projectId: project, userId: u.id ?? "", blocked: !u.blocked });
                  list.reload();
                })}>{u.blocked ? "Unblock" : "Block"}</button>
                <button type="button" class="small signout write" onClick={() => void act.run(() => api.users.deleteUserSessions({ projectId: project, userId: u.id ?? "" }))}>Sign out everywhere</button>
                <button type="button" class="danger small write" onClick={() => setDeleting(u.id ?? "")}>Delete</button>
              </td>
            </tr>
          ))}</tbody>
        </table>
      ) : null}
      {deleting ? <ConfirmDelete what="user" id={deleting} onClose={() => setDeleting(null)}
        onConfirm={async () => { await api.users.deleteUser({ projectId: project, userId: deleting }); list.reload(); }} /> : null}
    </>
  );
}

function Teams({ project }: { project: string }) {
  const list = useLoad(() => all(async (pageToken) => {
    const r = await api.teams.listTeams({ projectId: project, pageSize: 200, pageToken });
    return { items: r.teams ?? [], next: r.nextPageToken ?? "" };
  }, 1000), [project]);
  const [name, setName] = useState("");
  const [deleting, setDeleting] = useState<string | null>(null);
  const act = useAction();
  return (
    <>
      <form class="inline write" id="team-create" onSubmit={async (e) => {
        e.preventDefault();
        if (await act.run(() => api.teams.createTeam({ projectId: project, name }))) {
          setName(""); list.reload();
        }
      }}>
        <input name="name" placeholder="team name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <button type="submit" class="primary" disabled={!name || act.busy}>Create team</button>
      </form>
      <ErrorBox error={act.error} />
      <Loading loading={list.loading} />
      <ErrorBox error={list.error} />
      {list.data?.length === 0 ? <Empty>No team yet.</Empty> : null}
      {list.data?.length ? (
        <table id="teams">
          <thead><tr><th>Id</th><th>Name</th><th>Created</th><th /></tr></thead>
          <tbody>{list.data.map((t) => (
            <tr key={t.id} data-team={t.id}>
              <td><code>{t.id}</code></td><td>{t.name}</td><td class="muted">{when(t.createdAt)}</td>
              <td><button type="button" class="danger small write" onClick={() => setDeleting(t.id ?? "")}>Delete</button></td>
            </tr>
          ))}</tbody>
        </table>
      ) : null}
      {deleting ? <ConfirmDelete what="team" id={deleting} onClose={() => setDeleting(null)}
        onConfirm={async () => { await api.teams.deleteTeam({ projectId: project, teamId: deleting }); list.reload(); }} /> : null}
    </>
  );
}

const methods = ["email-password", "anonymous", "magic-url", "email-otp", "oauth2", "passkey"];

/** Duration as protojson writes it ("3600s") to hours, and back. */
const hours = (d: string | undefined) => (d ? String(Number(d.replace(/s$/, "")) / 3600) : "");
const duration = (h: string) => `${Math.round(Number(h) * 3600)}s`;

function Settings({ project }: { project: string }) {
  const loaded = useLoad(() => api.users.getAuthSettings({ projectId: project }), [project]);
  const [s, setS] = useState<AuthSettingsJson | null>(null);
  const [saved, setSaved] = useState(false);
  const act = useAction();
  useEffect(() => setS(loaded.data?.settings ?? null), [loaded.data]);
  if (!s) return <><Loading loading={loaded.loading} /><ErrorBox error={loaded.error} /></>;
  const set = (patch: Partial<AuthSettingsJson>) => { setSaved(false); setS({ ...s, ...patch }); };
  const smtp = s.smtp;
  return (
    <form id="auth-settings" class="settings" onSubmit={async (e) => {
      e.preventDefault();
      setSaved(false);
      const settings: AuthSettingsJson = { ...s, allowedOrigins: (s.allowedOrigins ?? []).map((o) => o.trim()).filter(Boolean) };
      let stored: AuthSettingsJson | undefined;
      if (await act.run(async () => { stored = (await api.users.updateAuthSettings({ projectId: project, settings })).settings; })) {
        // The answer is the stored state: a reload arriving after the next
        // edit would overwrite that edit.
        if (stored) setS(stored);
        setSaved(true);
      }
    }}>
      <fieldset>
        <legend>Web platforms</legend>
        <label>Allowed origins, one per line (CORS, redirects and links in mail)
          <textarea name="allowedOrigins" rows={4} placeholder="https://app.example.com" value={(s.allowedOrigins ?? []).join("\n")}
            onInput={(e) => set({ allowedOrigins: e.currentTarget.value.split("\n") })} />
        </label>
        <label class="check"><input type="checkbox" name="disableLocalhostOrigins" checked={!!s.disableLocalhostOrigins}
          onChange={(e) => set({ disableLocalhostOrigins: e.currentTarget.checked })} /> refuse http://localhost origins (allowed by default for development)</label>
      </fieldset>
      <fieldset>
        <legend>Sessions and passwords</legend>
        <label>Session length (hours)<input name="sessionHours" type="number" min="0.02" step="any" value={hours(s.sessionDuration)}
          onInput={(e) => set({ sessionDuration: duration(e.currentTarget.value) })} /></label>
        <label>Sessions per user (0: no limit)<input name="maxSessions" type="number" min="0" max="100" value={s.maxSessions ?? 0}
          onInput={(e) => set({ maxSessions: Number(e.currentTarget.value) })} /></label>
        <label>Shortest password<input name="passwordMinLength" type="number" min="0" max="64" value={s.passwordMinLength ?? 0}
          onInput={(e) => set({ passwordMinLength: Number(e.currentTarget.value) })} /></label>
        <label class="check"><input type="checkbox" name="passwordCheckCommon" checked={!!s.passwordCheckCommon}
          onChange={(e) => set({ passwordCheckCommon: e.currentTarget.checked })} /> refuse common passwords</label>
      </fieldset>
      <fieldset>
        <legend>Sign-in methods</legend>
        {methods.map((m) => (
          <label key={m} class="check"><input type="checkbox" name={"method-" + m} checked={!(s.disabledMethods ?? []).includes(m)}
            onChange={(e) => set({ disabledMethods: e.currentTarget.checked ? (s.disabledMethods ?? []).filter((x) => x !== m) : [...(s.disabledMethods ?? []), m] })} /> {m}</label>
        ))}
      </fieldset>
      <OAuthProviders providers={s.oauthProviders ?? []} onChange={(oauthProviders) => set({ oauthProviders })} />
      <fieldset>
        <legend>SMTP (mail for verification, recovery, magic links)</legend>
        <label class="check"><input type="checkbox" name="smtpOn" checked={!!smtp}
          onChange={(e) => set({ smtp: e.currentTarget.checked ? { host: "", port: 587, senderEmail: "", security: "starttls" } : undefined })} /> send mail through my SMTP server</label>
        {smtp ? (
          <>
            <label>Host<input name="smtpHost" value={smtp.host ?? ""} onInput={(e) => set({ smtp: { ...smtp, host: e.currentTarget.value } })} /></label>
            <label>Port<input name="smtpPort" type="number" value={smtp.port ?? 587} onInput={(e) => set({ smtp: { ...smtp, port: Number(e.currentTarget.value) } })} /></label>
            <label>Security<select name="smtpSecurity" value={smtp.security ?? ""} onChange={(e) => set({ smtp: { ...smtp, security: e.currentTarget.value } })}>
              {["starttls", "tls", "none"].map((x) => <option key={x} value={x}>{x}</option>)}
            </select></label>
            <label>Username<input name="smtpUsername" autoComplete="off" value={smtp.username ?? ""} onInput={(e) => set({ smtp: { ...smtp, username: e.currentTarget.value } })} /></label>
            <label>Password<input name="smtpPassword" type="password" autoComplete="new-password" placeholder={smtp.passwordSet ? "stored: leave empty to keep it" : ""}
              value={smtp.password ?? ""} onInput={(e) => set({ smtp: { ...smtp, password: e.currentTarget.value } })} /></label>
            <label>Sender email<input name="smtpSenderEmail" type="email" value={smtp.senderEmail ?? ""} onInput={(e) => set({ smtp: { ...smtp, senderEmail: e.currentTarget.value } })} /></label>
            <label>Sender name<input name="smtpSenderName" value={smtp.senderName ?? ""} onInput={(e) => set({ smtp: { ...smtp, senderName: e.currentTarget.value } })} /></label>
          </>
        ) : null}
      </fieldset>
      <ErrorBox error={act.error} />
      {saved ? <p id="settings-saved" class="ok">Saved.</p> : null}
      <button type="submit" class="primary owner-only" disabled={act.busy}>Save settings</button>
    </form>
  );
}

/**
 * OAuth providers: kind, client id, issuer (OIDC), scopes, on or off. The
 * client secret is write-only like the SMTP password: the API says only
 * that one is stored, and an empty field keeps it.
 */
function OAuthProviders({ providers, onChange }: { providers: OAuthProviderJson[]; onChange: (p: OAuthProviderJson[]) => void }) {
  const put = (i: number, patch: Partial<OAuthProviderJson>) => onChange(providers.map((p, j) => (i === j ? { ...p, ...patch } : p)));
  return (
    <fieldset id="oauth-providers">
      <legend>OAuth providers</legend>
      {providers.length === 0 ? <p class="muted">None: add one to offer “Sign in with …” (the oauth2 method must be on).</p> : null}
      {providers.map((p, i) => (
        <div class="provider" key={i} data-provider={p.id}>
          <div class="row">
            <label>Id<input name="oauthId" value={p.id ?? ""} placeholder="github" onInput={(e) => put(i, { id: e.currentTarget.value })} /></label>
            <label>Kind<select name="oauthKind" value={p.kind ?? "oidc"} onChange={(e) => put(i, { kind: e.currentTarget.value })}>
              {["oidc", "github", "google"].map((k) => <option key={k} value={k}>{k}</option>)}</select></label>
            <label>Client id<input name="oauthClientId" autoComplete="off" value={p.clientId ?? ""} onInput={(e) => put(i, { clientId: e.currentTarget.value })} /></label>
            <label>Client secret<input name="oauthClientSecret" type="password" autoComplete="new-password"
              placeholder={p.clientSecretSet ? "stored: leave empty to keep it" : ""} value={p.clientSecret ?? ""}
              onInput={(e) => put(i, { clientSecret: e.currentTarget.value })} /></label>
          </div>
          <div class="row">
            {(p.kind ?? "oidc") === "oidc" ? <label>Issuer URL<input name="oauthIssuer" placeholder="https://accounts.example.com" value={p.issuerUrl ?? ""}
              onInput={(e) => put(i, { issuerUrl: e.currentTarget.value })} /></label> : null}
            <label>Scopes (space-separated; empty: the kind's defaults)<input name="oauthScopes" value={(p.scopes ?? []).join(" ")}
              onInput={(e) => put(i, { scopes: e.currentTarget.value.split(/\s+/).filter(Boolean) })} /></label>
            <label class="check"><input type="checkbox" name="oauthEnabled" checked={!p.disabled} onChange={(e) => put(i, { disabled: !e.currentTarget.checked })} /> enabled</label>
            <button type="button" class="danger small remove-provider" onClick={() => onChange(providers.filter((_, j) => j !== i))}>Remove</button>
          </div>
        </div>
      ))}
      <button type="button" class="small" id="add-provider" onClick={() => onChange([...providers, { id: "", kind: "github", clientId: "", scopes: [] }])}>+ provider</button>
    </fieldset>
  );
}
