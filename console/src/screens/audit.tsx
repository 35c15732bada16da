// The audit log: the project's events (EventsService.ListEvents), filtered
// by subject, each opened whole, with the history of its resource: every
// version from the log and its state at any sequence (events carry the
// resource's full state, so the log alone answers "what was it at N").
import { useEffect, useState } from "preact/hooks";
import type { EventJson } from "@cairn/gen/events_pb.js";
import { api, when } from "../api.js";
import { Empty, ErrorBox, Loading, Modal, base, useAction } from "../ui.js";

const reserved = new Set(["id", "occurredAt", "actor", "correlationId"]);

/** The envelope's payload name ("documentCreated") and value. */
function payload(e: EventJson): [string, unknown] {
  const env = (e.envelope ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(env)) if (!reserved.has(k)) return [k, v];
  return ["", undefined];
}

/** Shows the JSON that events carry as strings (dataJson) as JSON. */
function readable(key: string, value: unknown): unknown {
  if (typeof value === "string" && key.endsWith("Json")) {
    try {
      return JSON.parse(value);
    } catch {
      return value;
    }
  }
  return value;
}

function actor(e: EventJson): string {
  const a = e.envelope?.actor;
  if (!a) return "";
  const kind = (a.kind ?? "").replace("KIND_", "").toLowerCase();
  // A person (an operator account) by name; keys, users, functions by id.
  return kind + (a.name ? " " + a.name : a.id ? " " + a.id : "");
}

export function Audit({ project, subject: initial }: { project: string; subject: string }) {
  const [subject, setSubject] = useState(initial);
  const [query, setQuery] = useState(initial);
  const [events, setEvents] = useState<EventJson[]>([]);
  const [next, setNext] = useState("");
  const [open, setOpen] = useState<EventJson | null>(null);
  const [loaded, setLoaded] = useState(false);
  const act = useAction();
  const load = async (token: string) => {
    const r = await api.events.listEvents({ projectId: project, subject: query, pageSize: 200, pageToken: token });
    setEvents((x) => (token ? [...x, ...(r.events ?? [])] : r.events ?? []));
    setNext(r.nextPageToken ?? "");
    setLoaded(true);
  };
  useEffect(() => {
    setLoaded(false);
    setEvents([]);
    void act.run(() => load(""));
  }, [project, query]);
  return (
    <>
      <h2>Audit log</h2>
      <form class="inline" id="audit-filter" onSubmit={(e) => {
        e.preventDefault();
        history.replaceState(null, "", `${base}/p/${project}/audit${subject ? "?subject=" + encodeURIComponent(subject) : ""}`);
        setQuery(subject.trim());
      }}>
        <input name="subject" class="wide" placeholder="subject filter, e.g. keys.> or databases.main.collections.*.documents.>" value={subject}
          onInput={(e) => setSubject(e.currentTarget.value)} />
        <button type="submit">Filter</button>
      </form>
      <p class="muted">Subjects are relative to the project; <code>*</code> matches one token, a final <code>&gt;</code> the rest. Oldest first.</p>
      <Loading loading={act.busy && !loaded} />
      <ErrorBox error={act.error} />
      {loaded && events.length === 0 ? <Empty>No event{query ? " matches " + query : ""}.</Empty> : null}
      {events.length ? (
        <table id="events">
          <thead><tr><th>Seq</th><th>Time</th><th>Subject</th><th>Event</th><th>Actor</th></tr></thead>
          <tbody>{events.map((e) => (
            <tr key={e.seq} data-seq={e.seq} class="clickable" onClick={() => setOpen(e)}>
              <td class="num">{e.seq}</td><td class="muted">{when(e.time)}</td>
              <td><button type="button" class="link mono">{e.subject}</button></td>
              <td>{payload(e)[0]}</td><td>{actor(e)}</td>
            </tr>
          ))}</tbody>
        </table>
      ) : null}
      {next ? <button type="button" onClick={() => void act.run(() => load(next))} disabled={act.busy}>Load more</button> : null}
      {open ? (
        <Modal title={`Event ${open.seq}: ${open.subject}`} onClose={() => setOpen(null)}>
          <dl class="meta">
            <dt>Time</dt><dd>{when(open.time)}</dd>
            <dt>Type</dt><dd>{payload(open)[0]}</dd>
            <dt>Actor</dt><dd>{actor(open)}</dd>
            <dt>Event id</dt><dd><code>{open.envelope?.id}</code></dd>
            {open.envelope?.correlationId ? <><dt>Correlation</dt><dd><code>{open.envelope.correlationId}</code></dd></> : null}
          </dl>
          <pre id="event-json" class="json">{JSON.stringify(payload(open)[1], readable, 2)}</pre>
          <History project={project} event={open} />
        </Modal>
      ) : null}
    </>
  );
}

/** The resource an event is about: its subject without the verb. */
function resourceOf(subject: string): string {
  const i = subject.lastIndexOf(".");
  return i > 0 ? subject.slice(0, i) : subject;
}

/** Top-level fields whose value differs between two states. */
function changed(a: unknown, b: unknown): string[] {
  const x = (a ?? {}) as Record<string, unknown>;
  const y = (b ?? {}) as Record<string, unknown>;
  const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
  return [...keys].filter((k) => JSON.stringify(x[k]) !== JSON.stringify(y[k])).sort();
}

/** Time travel: the resource's versions, and its state at a chosen sequence. */
function History({ project, event }: { project: string; event: EventJson }) {
  const resource = resourceOf(event.subject ?? "");
  const [versions, setVersions] = useState<EventJson[] | null>(null);
  const [at, setAt] = useState(String(event.seq ?? ""));
  const act = useAction();
  useEffect(() => {
    setVersions(null);
    setAt(String(event.seq ?? ""));
    void act.run(async () => {
      const out: EventJson[] = [];
      let token = "";
      do {
        const r = await api.events.listEvents({ projectId: project, subject: resource + ".*", pageSize: 1000, pageToken: token });
        out.push(...(r.events ?? []));
        token = r.nextPageToken ?? "";
      } while (token && out.length < 10_000);
      setVersions(out);
    });
  }, [project, resource, event.seq]);
  const n = Number(at);
  const upTo = versions ? versions.filter((v) => Number(v.seq) <= n) : [];
  const cur = upTo[upTo.length - 1];
  const prev = upTo[upTo.length - 2];
  const [type, state] = cur ? payload(cur) : ["", undefined];
  const deleted = /Deleted$|Removed$/.test(type);
  return (
    <section id="history">
      <h3>History of <code>{resource}</code></h3>
      <ErrorBox error={act.error} />
      <Loading loading={act.busy && !versions} />
      {versions ? (
        <>
          <table id="versions">
            <thead><tr><th>Seq</th><th>Time</th><th>Event</th><th>Actor</th></tr></thead>
            <tbody>{versions.map((v) => (
              <tr key={v.seq} data-seq={v.seq} class={String(v.seq) === at ? "clickable selected" : "clickable"} onClick={() => setAt(String(v.seq))}>
                <td class="num">{v.seq}</td><td class="muted">{when(v.time)}</td><td>{payload(v)[0]}</td><td>{actor(v)}</td>
              </tr>
            ))}</tbody>
          </table>
          <form class="inline" id="state-at" onSubmit={(e) => e.preventDefault()}>
            <label>State at sequence <input name="seq" type="number" min="1" value={at} onInput={(e) => setAt(e.currentTarget.value)} /></label>
          </form>
          {!cur ? <p id="state-at-result" class="muted">Did not exist yet at sequence {at}.</p> : (
            <>
              <p id="state-at-result">
                {deleted ? <>Deleted at sequence {cur.seq}; its last state:</> : <>As of sequence {cur.seq} ({payload(cur)[0]}, {when(cur.time)}):</>}
                {prev ? <span class="muted"> changed since {prev.seq}: {changed(payload(prev)[1], state).join(", ") || "nothing"}</span> : null}
              </p>
              <pre id="state-json" class="json">{JSON.stringify(state, readable, 2)}</pre>
            </>
          )}
        </>
      ) : null}
    </section>
  );
}
