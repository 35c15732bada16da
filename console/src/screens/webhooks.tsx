// Webhooks: the list with each one's state (enabled, paused and why,
// failures in a row), create (the signing secret shown once), edit
// (name, URL, events, enabled, rotate the secret), delete; a webhook's
// delivery log, and "redeliver from here" on any delivered event.
import { useState } from "preact/hooks";
import type { WebhookJson } from "@cairn/gen/webhooks_pb.js";
import { api, all, when } from "../api.js";
import { ConfirmDelete, Empty, ErrorBox, Loading, Modal, useAction, useLoad } from "../ui.js";

const splitEvents = (s: string) => s.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);

function state(w: WebhookJson): string {
  if (w.pausedAt) return "paused";
  return w.enabled ? "enabled" : "disabled";
}

export function Webhooks({ project }: { project: string }) {
  const list = useLoad(() => all(async (pageToken) => {
    const r = await api.webhooks.listWebhooks({ projectId: project, pageSize: 500, pageToken });
    return { items: r.webhooks ?? [], next: r.nextPageToken ?? "" };
  }), [project]);
  const [secret, setSecret] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);
  const shown = list.data?.find((w) => w.id === open);
  return (
    <>
      <h2>Webhooks</h2>
      <p class="muted">Each webhook receives the project's events it names, signed with its secret, at least once and in order
        (<code>docs/webhooks.md</code>).</p>
      {secret ? (
        <div class="secret" id="new-webhook-secret">
          <p><strong>The signing secret, shown this once:</strong> Cairn keeps it sealed and never shows it again.</p>
          <code class="block" id="webhook-secret-value">{secret}</code>
          <button type="button" class="link" id="webhook-secret-done" onClick={() => setSecret(null)}>Done, hide it</button>
        </div>
      ) : null}
      <WebhookForm project={project} onSaved={(s) => { if (s) setSecret(s); list.reload(); }} />
      <Loading loading={list.loading} />
      <ErrorBox error={list.error} />
      {list.data?.length === 0 ? <Empty>No webhook yet.</Empty> : null}
      {list.data && list.data.length > 0 ? (
        <table id="webhooks">
          <thead><tr><th>Webhook</th><th>URL</th><th>Events</th><th>State</th><th>Failures in a row</th><th>Updated</th><th /></tr></thead>
          <tbody>{list.data.map((w) => (
            <tr key={w.id} data-webhook={w.id} class="clickable" onClick={() => setOpen(open === w.id ? null : w.id ?? "")}>
              <td><button type="button" class="link strong">{w.id}</button> {w.name !== w.id ? <span class="muted">{w.name}</span> : null}</td>
              <td class="mono wrap">{w.url}</td>
              <td>{(w.events ?? []).map((e) => <span class="chip" key={e}>{e}</span>)}</td>
              <td><span class={state(w) === "enabled" ? "chip" : "chip warn"} data-state={state(w)}>{state(w)}</span>
                {w.pausedReason ? <div class="muted small">{w.pausedReason}</div> : null}</td>
              <td class="num">{w.failuresInRow ?? "0"}</td>
              <td class="muted">{when(w.updatedAt)}</td>
              <td><button type="button" class="danger small write" onClick={(e) => { e.stopPropagation(); setDeleting(w.id ?? ""); }}>Delete</button></td>
            </tr>
          ))}</tbody>
        </table>
      ) : null}
      {shown ? <WebhookPanel key={shown.id} project={project} w={shown} reload={list.reload} onSecret={setSecret} /> : null}
      {deleting ? <ConfirmDelete what="webhook" id={deleting} onClose={() => setDeleting(null)}
        onConfirm={async () => { await api.webhooks.deleteWebhook({ projectId: project, webhookId: deleting }); setOpen(null); list.reload(); }} /> : null}
    </>
  );
}

/** Creates a webhook, or edits w when given. */
function WebhookForm({ project, w, onSaved }: { project: string; w?: WebhookJson; onSaved: (secret: string) => void }) {
  const [id, setId] = useState("");
  const [name, setName] = useState(w?.name ?? "");
  const [url, setUrl] = useState(w?.url ?? "");
  const [events, setEvents] = useState((w?.events ?? []).join(", "));
  const [enabled, setEnabled] = useState(w ? w.enabled ?? false : true);
  const [rotate, setRotate] = useState(false);
  const act = useAction();
  return (
    <form class="card write" id={w ? "edit-webhook" : "create-webhook"} onSubmit={async (e) => {
      e.preventDefault();
      let secret = "";
      const ok = await act.run(async () => {
        if (w) {
          const r = await api.webhooks.updateWebhook({ projectId: project, webhookId: w.id ?? "", name, url,
            events: { events: splitEvents(events) }, enabled, rotateSecret: rotate });
          secret = r.secret ?? "";
        } else {
          const r = await api.webhooks.createWebhook({ projectId: project, webhookId: id, name: name || id, url,
            events: { events: splitEvents(events) }, enabled });
          secret = r.secret ?? "";
        }
      });
      if (ok) {
        if (!w) { setId(""); setName(""); setUrl(""); setEvents(""); }
        setRotate(false);
        onSaved(secret);
      }
    }}>
      <h3>{w ? `Edit ${w.id}` : "New webhook"}</h3>
      <div class="row">
        {w ? null : <label>Id <input name="webhookId" value={id} placeholder="generated when empty" onInput={(e) => setId(e.currentTarget.value)} /></label>}
        <label>Name <input name="webhookName" value={name} onInput={(e) => setName(e.currentTarget.value)} /></label>
        <label>URL <input name="webhookUrl" type="url" value={url} placeholder="https://example.com/hooks/cairn" onInput={(e) => setUrl(e.currentTarget.value)} /></label>
      </div>
      <label>Events, comma-separated (* matches one part)
        <input name="webhookEvents" class="mono" value={events} placeholder="databases.*.collections.*.documents.*.create, users.*"
          onInput={(e) => setEvents(e.currentTarget.value)} /></label>
      <div class="row">
        <label class="check"><input type="checkbox" name="webhookEnabled" checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} />
          {" "}enabled{w?.pausedAt ? " (saving enabled resumes the paused webhook)" : ""}</label>
        {w ? <label class="check"><input type="checkbox" name="rotateSecret" checked={rotate} onChange={(e) => setRotate(e.currentTarget.checked)} /> rotate the signing secret</label> : null}
      </div>
      <ErrorBox error={act.error} />
      <button type="submit" class="primary" disabled={act.busy}>{w ? "Save" : "Create webhook"}</button>
    </form>
  );
}

function WebhookPanel({ project, w, reload, onSecret }: { project: string; w: WebhookJson; reload: () => void; onSecret: (s: string) => void }) {
  const webhookId = w.id ?? "";
  const deliveries = useLoad(() => all(async (pageToken) => {
    const r = await api.webhooks.listWebhookDeliveries({ projectId: project, webhookId, pageSize: 1000, pageToken });
    return { items: r.deliveries ?? [], next: r.nextPageToken ?? "" };
  }, 5000), [project, webhookId]);
  const [from, setFrom] = useState("");
  const [excerpt, setExcerpt] = useState<string | null>(null);
  const act = useAction();
  const redeliver = async (seq: string) => {
    if (await act.run(() => api.webhooks.redeliverWebhook({ projectId: project, webhookId, fromSequence: seq }))) {
      setFrom("");
      reload();
      deliveries.reload();
    }
  };
  // Newest first: the log sorts by event, so the last page is the latest.
  const rows = [...(deliveries.data ?? [])].reverse();
  return (
    <div class="card" id="webhook-panel">
      <WebhookForm key={w.updatedAt} project={project} w={w} onSaved={(s) => { if (s) onSecret(s); reload(); }} />
      <h3>Deliveries of {webhookId}</h3>
      <p class="muted">Created at sequence {w.createdSequence ?? "?"}
        {w.redelivery ? <> · redelivered {w.redelivery} time(s), last from sequence <span id="redeliver-from">{w.redeliverFrom}</span></> : null}</p>
      <form class="row write" id="redeliver" onSubmit={(e) => { e.preventDefault(); void redeliver(from); }}>
        <label>Redeliver from sequence <input name="fromSequence" inputMode="numeric" value={from} onInput={(e) => setFrom(e.currentTarget.value)} /></label>
        <button type="submit" disabled={!from || act.busy}>Redeliver</button>
        <button type="button" onClick={() => deliveries.reload()}>Refresh</button>
      </form>
      <ErrorBox error={act.error} />
      <ErrorBox error={deliveries.error} />
      {rows.length === 0 && !deliveries.loading ? <Empty>No delivery yet.</Empty> : null}
      {rows.length > 0 ? (
        <table id="webhook-deliveries">
          <thead><tr><th>Sequence</th><th>Event</th><th>Attempt</th><th>Status</th><th>Duration</th><th>At</th><th /></tr></thead>
          <tbody>{rows.map((d) => (
            <tr key={d.id} data-delivery={d.id} class={d.success ? "" : "failed"}>
              <td class="num">{d.eventSeq}</td>
              <td class="mono wrap">{d.event}{d.error ? <div class="error-text">{d.error}</div> : null}</td>
              <td class="num">{d.attempt}{d.id?.includes("-r") ? " (redelivery)" : ""}</td>
              <td><button type="button" class={d.success ? "link" : "link error-text"} onClick={() => setExcerpt(d.responseExcerpt ? atob(d.responseExcerpt) : "(empty)")}>
                {d.responseStatus || "none"}</button></td>
              <td class="num">{d.durationMs ?? "0"} ms</td>
              <td class="muted">{when(d.createdAt)}</td>
              <td><button type="button" class="small write" title="Deliver this event and every later one again"
                onClick={() => void redeliver(d.eventSeq ?? "")}>From here</button></td>
            </tr>
          ))}</tbody>
        </table>
      ) : null}
      {excerpt !== null ? <Modal title="Response excerpt" onClose={() => setExcerpt(null)}><pre class="logs">{excerpt}</pre></Modal> : null}
    </div>
  );
}
