// API keys: list, create with a scopes picker (the secret shown once), delete.
import { useState } from "preact/hooks";
import { api, all, when } from "../api.js";
import { ConfirmDelete, Empty, ErrorBox, Loading, useAction, useLoad } from "../ui.js";

/** The scopes a key may hold (domain/access; keys.proto validates the same list). */
export const knownScopes = [
  "users.read", "users.write", "teams.read", "teams.write",
  "databases.read", "databases.write", "collections.read", "collections.write",
  "documents.read", "documents.write", "buckets.read", "buckets.write", "files.read", "files.write",
  "functions.read", "functions.write", "executions.read", "executions.write",
  "sites.read", "sites.write", "events.read", "keys.read", "keys.write", "webhooks.read", "webhooks.write",
  "usage.read",
];

export function Keys({ project }: { project: string }) {
  const list = useLoad(() => all(async (pageToken) => {
    const r = await api.keys.listKeys({ projectId: project, pageSize: 500, pageToken });
    return { items: r.keys ?? [], next: r.nextPageToken ?? "" };
  }), [project]);
  const [deleting, setDeleting] = useState<string | null>(null);
  const [secret, setSecret] = useState<string | null>(null);
  return (
    <>
      <h2>API keys</h2>
      <p class="muted">Keys are for servers and scripts: each works only for <code>{project}</code> and only within its scopes.</p>
      {secret ? (
        <div class="secret" id="new-secret">
          <p><strong>The key's secret, shown this once:</strong> copy it now; Cairn keeps only its hash.</p>
          <code class="block" id="secret-value">{secret}</code>
          <button type="button" onClick={() => void navigator.clipboard?.writeText(secret)}>Copy</button>
          <button type="button" class="link" id="secret-done" onClick={() => setSecret(null)}>Done, hide it</button>
        </div>
      ) : null}
      <CreateKey project={project} onCreated={(s) => { setSecret(s); list.reload(); }} />
      <Loading loading={list.loading} />
      <ErrorBox error={list.error} />
      {list.data?.length === 0 ? <Empty>No key yet.</Empty> : null}
      {list.data && list.data.length > 0 ? (
        <table id="keys">
          <thead><tr><th>Id</th><th>Name</th><th>Scopes</th><th>Expires</th><th>Created</th><th /></tr></thead>
          <tbody>{list.data.map((k) => (
            <tr key={k.id} data-key={k.id}>
              <td><code>{k.id}</code></td><td>{k.name}</td>
              <td class="scopes">{(k.scopes ?? []).map((s) => <span class="chip" key={s}>{s}</span>)}</td>
              <td class="muted">{when(k.expiresAt) || "never"}</td><td class="muted">{when(k.createdAt)}</td>
              <td><button type="button" class="danger small owner-only" onClick={() => setDeleting(k.id ?? "")}>Delete</button></td>
            </tr>
          ))}</tbody>
        </table>
      ) : null}
      {deleting ? <ConfirmDelete what="key" id={deleting} onClose={() => setDeleting(null)}
        onConfirm={async () => { await api.keys.deleteKey({ projectId: project, keyId: deleting }); list.reload(); }} /> : null}
    </>
  );
}

function CreateKey({ project, onCreated }: { project: string; onCreated: (secret: string) => void }) {
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<string[]>([]);
  const [expires, setExpires] = useState("");
  const act = useAction();
  const toggle = (s: string) => setScopes((x) => (x.includes(s) ? x.filter((y) => y !== s) : [...x, s]));
  return (
    <form class="card owner-only" id="create-key" onSubmit={async (e) => {
      e.preventDefault();
      let secret = "";
      if (await act.run(async () => {
        const r = await api.keys.createKey({
          projectId: project, name, scopes: { scopes },
          ...(expires ? { expiresAt: new Date(expires).toISOString() } : {}),
        });
        secret = r.secret ?? "";
      })) {
        setName("");
        setScopes([]);
        onCreated(secret);
      }
    }}>
      <h3>New key</h3>
      <div class="row">
        <label>Name <input name="keyName" value={name} onInput={(e) => setName(e.currentTarget.value)} /></label>
        <label>Expires (optional) <input type="datetime-local" value={expires} onInput={(e) => setExpires(e.currentTarget.value)} /></label>
      </div>
      <fieldset class="scopes-picker">
        <legend>Scopes <button type="button" class="link" onClick={() => setScopes(scopes.length === knownScopes.length ? [] : [...knownScopes])}>
          {scopes.length === knownScopes.length ? "none" : "all"}</button></legend>
        {knownScopes.map((s) => (
          <label key={s} class="check"><input type="checkbox" name="scope" value={s} checked={scopes.includes(s)} onChange={() => toggle(s)} /> {s}</label>
        ))}
      </fieldset>
      <ErrorBox error={act.error} />
      <button type="submit" class="primary" disabled={act.busy}>Create key</button>
    </form>
  );
}
