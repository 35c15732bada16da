// The realtime inspector: subscribe to channels with the console's
// credential and watch events arrive, as an app would receive them.
import { useEffect, useRef, useState } from "preact/hooks";
import type { RealtimeEvent, RealtimeState, Subscription } from "@cairn/client";
import { cairn, describe } from "../api.js";
import { Empty, Modal } from "../ui.js";

/** The newest events kept on screen; older ones scroll away. */
const keep = 500;
const kindNames = ["create", "update", "delete"] as const;

export function Realtime({ project }: { project: string }) {
  const [channels, setChannels] = useState("documents");
  const [kinds, setKinds] = useState<Set<string>>(new Set(kindNames));
  const [state, setState] = useState<RealtimeState | "stopped">("stopped");
  const [events, setEvents] = useState<RealtimeEvent[]>([]);
  const [count, setCount] = useState(0);
  const [error, setError] = useState("");
  const [open, setOpen] = useState<RealtimeEvent | null>(null);
  const sub = useRef<Subscription | null>(null);
  const stop = () => {
    sub.current?.unsubscribe();
    sub.current = null;
    setState("stopped");
  };
  useEffect(() => stop, [project]);
  const start = () => {
    stop();
    setError("");
    setEvents([]);
    setCount(0);
    const list = channels.split(/[\s,]+/).filter(Boolean);
    sub.current = cairn(project).subscribe(list, (e) => {
      setCount((n) => n + 1);
      setEvents((x) => [e, ...x].slice(0, keep));
    }, {
      resume: false,
      kinds: [...kinds] as (typeof kindNames)[number][],
      onState: (s) => setState(s),
      onError: (err) => setError(describe(err).message),
    });
  };
  return (
    <>
      <h2>Realtime</h2>
      <form class="inline" id="realtime-form" onSubmit={(e) => { e.preventDefault(); start(); }}>
        <input name="channels" class="wide" value={channels} onInput={(e) => setChannels(e.currentTarget.value)}
          placeholder="channels, e.g. documents, databases.main.collections.posts.documents, files, buckets.b1.files" />
        {kindNames.map((k) => (
          <label key={k} class="check">
            <input type="checkbox" name={"kind-" + k} checked={kinds.has(k)} onChange={(e) => {
              const next = new Set(kinds);
              if (e.currentTarget.checked) next.add(k);
              else next.delete(k);
              setKinds(next);
            }} /> {k}
          </label>
        ))}
        <button type="submit" class="primary" disabled={!channels.trim() || kinds.size === 0}>{sub.current ? "Restart" : "Subscribe"}</button>
        {sub.current ? <button type="button" id="realtime-stop" onClick={stop}>Stop</button> : null}
      </form>
      <p class="muted">
        State: <strong id="realtime-state" data-state={state}>{state}</strong> · {count} event{count === 1 ? "" : "s"} received
        {count > keep ? ` (the newest ${keep} shown)` : ""}. Only events from now on; an app resumes after the last sequence it saw.
      </p>
      {error ? <p class="error" id="realtime-error">{error}</p> : null}
      {state !== "stopped" && events.length === 0 ? <Empty>Waiting for events on {channels}.</Empty> : null}
      {events.length ? (
        <table id="realtime-events">
          <thead><tr><th>Seq</th><th>Time</th><th>Event</th><th>Channels</th></tr></thead>
          <tbody>{events.map((e) => (
            <tr key={e.sequence} data-seq={e.sequence} class="clickable" onClick={() => setOpen(e)}>
              <td class="num">{e.sequence}</td>
              <td class="muted">{e.timestamp ? e.timestamp.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : ""}</td>
              <td><button type="button" class="link mono">{e.events[0] ?? e.kind}</button></td>
              <td class="mono wrap">{e.channels.join(", ")}</td>
            </tr>
          ))}</tbody>
        </table>
      ) : null}
      {open ? (
        <Modal title={`Event ${open.sequence}: ${open.events[0] ?? open.kind}`} onClose={() => setOpen(null)}>
          <dl class="meta">
            <dt>Names</dt><dd class="mono">{open.events.join(" · ")}</dd>
            <dt>Channels</dt><dd class="mono">{open.channels.join(", ")}</dd>
          </dl>
          <pre id="realtime-json" class="json">{JSON.stringify(open.payload, null, 2)}</pre>
        </Modal>
      ) : null}
    </>
  );
}
