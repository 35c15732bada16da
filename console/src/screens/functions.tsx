// Functions: the list; a function run with a payload; its executions with
// their logs, errors and response; its variables, secrets masked. Deploying
// code is the CLI's.
import { useState } from "preact/hooks";
import type { ExecutionJson, FunctionJson, FunctionVariableJson, UpdateFunctionRequestJson } from "@cairn/gen/functions_pb.js";
import { api, when } from "../api.js";
import { Empty, ErrorBox, Loading, Modal, useAction, useLoad } from "../ui.js";

function toBase64(s: string): string {
  let bin = "";
  for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
  return btoa(bin);
}

function fromBase64(s: string | undefined): string {
  if (!s) return "";
  try {
    return new TextDecoder().decode(Uint8Array.from(atob(s), (c) => c.charCodeAt(0)));
  } catch {
    return s;
  }
}

const status = (s: string | undefined) => (s ?? "").replace("EXECUTION_STATUS_", "").toLowerCase();

export function Functions({ project }: { project: string }) {
  const fns = useLoad(async () => (await api.functions.listFunctions({ projectId: project, limit: 1000 })).functions ?? [], [project]);
  const [open, setOpen] = useState<string | null>(null);
  return (
    <>
      <h2>Functions</h2>
      <p class="muted">Create and deploy with the CLI: <code>cairn functions deploy --project {project} …</code>.</p>
      <Loading loading={fns.loading} />
      <ErrorBox error={fns.error} />
      {fns.data?.length === 0 ? <Empty>No function yet.</Empty> : null}
      {fns.data && fns.data.length > 0 ? (
        <table id="functions">
          <thead><tr><th>Function</th><th>Runtime</th><th>Triggers</th><th>Active deployment</th><th>Queued</th><th>Updated</th></tr></thead>
          <tbody>{fns.data.map((f) => (
            <tr key={f.id} class="clickable" onClick={() => setOpen(open === f.id ? null : f.id ?? "")}>
              <td><button type="button" class="link strong">{f.id}</button>{f.enabled === false ? " (disabled)" : ""}</td>
              <td>{f.runtime}</td>
              <td>{(f.events ?? []).map((e) => <span class="chip" key={e}>{e}</span>)}{f.schedule ? <span class="chip">{f.schedule}</span> : null}
                {(f.execute ?? []).length ? <span class="chip">execute: {(f.execute ?? []).join(", ")}</span> : null}</td>
              <td><code>{f.activeDeploymentId}</code></td><td class="num">{f.queued ?? "0"}</td><td class="muted">{when(f.updatedAt)}</td>
            </tr>
          ))}</tbody>
        </table>
      ) : null}
      {open ? <FunctionPanel project={project} fn={fns.data?.find((f) => f.id === open) ?? { id: open }} /> : null}
      {open && fns.data?.find((f) => f.id === open) ? <FunctionSettings key={"s" + open} project={project} fn={fns.data.find((f) => f.id === open) ?? {}} reload={fns.reload} /> : null}
      {open && fns.data?.find((f) => f.id === open) ? <Variables key={open} project={project} fn={fns.data.find((f) => f.id === open) ?? {}} reload={fns.reload} /> : null}
    </>
  );
}

function FunctionPanel({ project, fn }: { project: string; fn: FunctionJson }) {
  const functionId = fn.id ?? "";
  const execs = useLoad(async () => (await api.functions.listExecutions({ projectId: project, functionId, limit: 50 })).executions ?? [], [project, functionId]);
  const [payload, setPayload] = useState("{}");
  const [method, setMethod] = useState("POST");
  const [path, setPath] = useState("/");
  const [async, setAsync] = useState(false);
  const [shown, setShown] = useState<ExecutionJson | null>(null);
  const act = useAction();
  return (
    <div class="card" id="function-panel">
      <h3>Run {functionId}</h3>
      <form class="write" onSubmit={async (e) => {
        e.preventDefault();
        await act.run(async () => {
          const r = await api.functions.createExecution({ projectId: project, functionId, body: toBase64(payload), method, path, async,
            headers: { "content-type": "application/json" } });
          if (r.execution) setShown(r.execution);
          execs.reload();
        });
      }}>
        <div class="row">
          <label>Method <select value={method} onChange={(e) => setMethod(e.currentTarget.value)}>
            {["POST", "GET", "PUT", "PATCH", "DELETE"].map((m) => <option key={m}>{m}</option>)}</select></label>
          <label>Path <input value={path} onInput={(e) => setPath(e.currentTarget.value)} /></label>
          <label class="check"><input type="checkbox" checked={async} onChange={(e) => setAsync(e.currentTarget.checked)} /> asynchronous</label>
        </div>
        <label>Payload<textarea rows={5} class="mono" value={payload} onInput={(e) => setPayload(e.currentTarget.value)} /></label>
        <ErrorBox error={act.error} />
        <button type="submit" class="primary" disabled={act.busy}>Run</button>
      </form>
      <h3>Executions</h3>
      <ErrorBox error={execs.error} />
      {execs.data?.length === 0 ? <Empty>No execution yet.</Empty> : null}
      {execs.data && execs.data.length > 0 ? (
        <table class="executions">
          <thead><tr><th>Execution</th><th>Trigger</th><th>Status</th><th>Response</th><th>Duration</th><th>Created</th></tr></thead>
          <tbody>{execs.data.map((x) => (
            <tr key={x.id} class="clickable" onClick={() => setShown(x)}>
              <td><button type="button" class="link mono">{x.id}</button></td><td>{x.trigger}</td>
              <td><span class={x.status === "EXECUTION_STATUS_FAILED" ? "chip warn" : "chip"}>{status(x.status)}</span></td>
              <td class="num">{x.responseStatus || ""}</td><td class="num">{x.durationMs ?? "0"} ms</td><td class="muted">{when(x.createdAt)}</td>
            </tr>
          ))}</tbody>
        </table>
      ) : null}
      {shown ? (
        <Modal title={`Execution ${shown.id}`} onClose={() => setShown(null)}>
          <dl class="meta">
            <dt>Status</dt><dd>{status(shown.status)}</dd>
            <dt>Request</dt><dd>{shown.requestMethod} {shown.requestPath}</dd>
            <dt>Response</dt><dd>{shown.responseStatus || ""}</dd>
            <dt>Duration</dt><dd>{shown.durationMs ?? "0"} ms</dd>
          </dl>
          <h3>Logs</h3><pre class="logs" id="execution-logs">{shown.logs || "(none)"}</pre>
          {shown.errors ? <><h3>Errors</h3><pre class="logs error-text">{shown.errors}</pre></> : null}
          <h3>Response body</h3><pre class="logs">{fromBase64(shown.responseBody) || "(empty)"}</pre>
        </Modal>
      ) : null}
    </div>
  );
}

/**
 * A function's variables. UpdateFunction replaces the whole list, and a
 * secret sent back with an empty value keeps its stored one: the API never
 * returns a secret's value, so the list read is the list to send.
 */
function Variables({ project, fn, reload }: { project: string; fn: FunctionJson; reload: () => void }) {
  const vars = fn.variables ?? [];
  const [key, setKey] = useState("");
  const [value, setValue] = useState("");
  const [secret, setSecret] = useState(false);
  const [editing, setEditing] = useState<string | null>(null);
  const act = useAction();
  const save = (next: FunctionVariableJson[]) => act.run(async () => {
    await api.functions.updateFunction({ projectId: project, functionId: fn.id ?? "", variables: { values: next } });
    reload();
  });
  const reset = () => { setKey(""); setValue(""); setSecret(false); setEditing(null); };
  return (
    <div class="card" id="variables">
      <h3>Variables of {fn.id}</h3>
      {vars.length === 0 ? <Empty>No variable.</Empty> : (
        <table>
          <thead><tr><th>Key</th><th>Value</th><th /></tr></thead>
          <tbody>{vars.map((v) => (
            <tr key={v.key} data-variable={v.key}>
              <td><code>{v.key}</code></td>
              <td>{v.secret ? <span class="chip" title="write-only: never shown after saving">secret ••••••</span> : <code>{v.value}</code>}</td>
              <td>
                <button type="button" class="small write edit-variable" onClick={() => {
                  setEditing(v.key ?? ""); setKey(v.key ?? ""); setValue(v.secret ? "" : v.value ?? ""); setSecret(v.secret ?? false);
                }}>Edit</button>{" "}
                <button type="button" class="danger small write delete-variable" disabled={act.busy}
                  onClick={() => void save(vars.filter((x) => x.key !== v.key))}>Delete</button>
              </td>
            </tr>
          ))}</tbody>
        </table>
      )}
      <form class="inline write" id="variable-form" onSubmit={async (e) => {
        e.preventDefault();
        const v: FunctionVariableJson = { key, value, secret };
        const next = editing !== null ? vars.map((x) => (x.key === editing ? v : x)) : [...vars, v];
        if (await save(next)) reset();
      }}>
        <input name="variableKey" placeholder="KEY" value={key} disabled={editing !== null} onInput={(e) => setKey(e.currentTarget.value)} />
        <input name="variableValue" type={secret ? "password" : "text"} autocomplete="off"
          placeholder={editing !== null && secret ? "new value (empty keeps the secret)" : "value"} value={value} onInput={(e) => setValue(e.currentTarget.value)} />
        <label class="check"><input type="checkbox" name="variableSecret" checked={secret} onChange={(e) => setSecret(e.currentTarget.checked)} /> secret</label>
        <button type="submit" class="primary" disabled={act.busy}>{editing !== null ? "Update variable" : "Add variable"}</button>
        {editing !== null ? <button type="button" class="link" onClick={reset}>cancel</button> : null}
        <ErrorBox error={act.error} />
      </form>
    </div>
  );
}

const list = (s: string) => s.split(/[\s,]+/).filter(Boolean);

/**
 * A function's settings, as UpdateFunction takes them (the runtime is
 * fixed at creation): name, timeout, who may execute it, its key's scopes,
 * triggering events, a cron schedule, enabled, concurrency. Variables have
 * their own form: UpdateFunction leaves them alone when unset.
 */
function FunctionSettings({ project, fn, reload }: { project: string; fn: FunctionJson; reload: () => void }) {
  const [f, setF] = useState({
    name: fn.name ?? "", timeout: String(fn.timeoutSeconds ?? 0), execute: (fn.execute ?? []).join(", "), scopes: (fn.scopes ?? []).join(", "),
    events: (fn.events ?? []).join("\n"), schedule: fn.schedule ?? "", enabled: fn.enabled ?? false, maxConcurrency: String(fn.maxConcurrency ?? 0),
  });
  const [saved, setSaved] = useState(false);
  const act = useAction();
  const set = (patch: Partial<typeof f>) => { setSaved(false); setF({ ...f, ...patch }); };
  return (
    <form class="card settings write" id="function-settings" onSubmit={async (e) => {
      e.preventDefault();
      const req: UpdateFunctionRequestJson = {
        projectId: project, functionId: fn.id ?? "", name: f.name, timeoutSeconds: Number(f.timeout), schedule: f.schedule.trim(), enabled: f.enabled,
        maxConcurrency: Number(f.maxConcurrency), execute: { values: list(f.execute) }, scopes: { values: list(f.scopes) },
        events: { values: f.events.split("\n").map((x) => x.trim()).filter(Boolean) },
      };
      if (await act.run(() => api.functions.updateFunction(req))) {
        setSaved(true);
        reload();
      }
    }}>
      <h3>Settings of {fn.id} <span class="muted">runtime {fn.runtime}</span></h3>
      <div class="row">
        <label>Name<input name="functionName" value={f.name} onInput={(e) => set({ name: e.currentTarget.value })} /></label>
        <label>Timeout (seconds, 0: default)<input name="timeoutSeconds" type="number" min="0" value={f.timeout} onInput={(e) => set({ timeout: e.currentTarget.value })} /></label>
        <label>Schedule (cron, UTC)<input name="schedule" placeholder="*/5 * * * *" value={f.schedule} onInput={(e) => set({ schedule: e.currentTarget.value })} /></label>
        <label>Concurrency (0: the project's limit)<input name="maxConcurrency" type="number" min="0" max="1000" value={f.maxConcurrency} onInput={(e) => set({ maxConcurrency: e.currentTarget.value })} /></label>
        <label class="check"><input type="checkbox" name="functionEnabled" checked={f.enabled} onChange={(e) => set({ enabled: e.currentTarget.checked })} /> enabled</label>
      </div>
      <div class="row">
        <label>Execute (roles: any, users, user:ID, team:ID…)<input name="execute" value={f.execute} onInput={(e) => set({ execute: e.currentTarget.value })} /></label>
        <label>Scopes of its key<input name="scopes" placeholder="documents.read, files.write" value={f.scopes} onInput={(e) => set({ scopes: e.currentTarget.value })} /></label>
      </div>
      <label><span>Events, one a line (e.g. <code>databases.*.collections.*.documents.*.create</code>)</span>
        <textarea name="events" rows={3} class="mono" value={f.events} onInput={(e) => set({ events: e.currentTarget.value })} /></label>
      <ErrorBox error={act.error} />
      <button type="submit" class="primary" disabled={act.busy}>Save function</button>
      {saved && !act.error ? <span class="ok" id="function-saved"> Saved.</span> : null}
    </form>
  );
}
