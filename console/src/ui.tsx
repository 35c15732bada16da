// Small shared pieces: the router, error display, loading, confirmation.
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { describe } from "./api.js";

export const base = "/console";

// --- router: history API under /console/, links intercepted ---

const listeners = new Set<() => void>();
export function navigate(to: string): void {
  history.pushState(null, "", base + to);
  listeners.forEach((l) => l());
}
addEventListener("popstate", () => listeners.forEach((l) => l()));

/** The path under /console ("/" at the root). */
export function usePath(): string {
  const [p, setP] = useState(current());
  useEffect(() => {
    const l = () => setP(current());
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
  return p;
}
function current(): string {
  const p = location.pathname.startsWith(base) ? location.pathname.slice(base.length) : "/";
  return p || "/";
}

export function Link(props: { to: string; children: ComponentChildren; class?: string; id?: string }) {
  return (
    <a href={base + props.to} class={props.class} id={props.id} onClick={(e) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
      e.preventDefault();
      navigate(props.to);
    }}>{props.children}</a>
  );
}

// --- errors and loading ---

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const d = describe(error);
  return (
    <div class="error" role="alert">
      <strong>{d.code}</strong>: {d.message}
      {d.field ? <div class="field">field: <code>{d.field}</code></div> : null}
    </div>
  );
}

/** Loads with f (again when deps change or reload() is called). */
export function useLoad<T>(f: () => Promise<T>, deps: unknown[]): { data: T | undefined; error: unknown; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({ data: undefined, error: null, loading: true });
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    f().then((data) => live && setState({ data, error: null, loading: false }),
      (error: unknown) => live && setState({ data: undefined, error, loading: false }));
    return () => void (live = false);
  }, [...deps, n]);
  return { ...state, reload: useCallback(() => setN((x) => x + 1), []) };
}

/** Runs an action, keeping its error for display and its busy state. */
export function useAction(): { busy: boolean; error: unknown; run: (f: () => Promise<unknown>) => Promise<boolean>; clear: () => void } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async (f: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await f();
      return true;
    } catch (e) {
      setError(e);
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run, clear: () => setError(null) };
}

export function Loading({ loading }: { loading: boolean }) {
  return loading ? <p class="muted">Loading…</p> : null;
}

/** A dialog asking to type id before a destructive action. */
export function ConfirmDelete(props: { what: string; id: string; onConfirm: () => Promise<unknown>; onClose: () => void }) {
  const [typed, setTyped] = useState("");
  const act = useAction();
  return (
    <div class="modal-backdrop">
      <div class="modal" role="dialog" aria-label={"Delete " + props.what}>
        <h3>Delete {props.what} <code>{props.id}</code>?</h3>
        <p>This cannot be undone. Type <code>{props.id}</code> to confirm.</p>
        <input id="confirm-id" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} autoFocus />
        <ErrorBox error={act.error} />
        <div class="actions">
          <button type="button" onClick={props.onClose}>Cancel</button>
          <button type="button" id="confirm-delete" class="danger" disabled={typed !== props.id || act.busy}
            onClick={async () => { if (await act.run(props.onConfirm)) props.onClose(); }}>Delete</button>
        </div>
      </div>
    </div>
  );
}

export function Modal(props: { title: string; children: ComponentChildren; onClose: () => void }) {
  return (
    <div class="modal-backdrop">
      <div class="modal wide" role="dialog" aria-label={props.title}>
        <div class="modal-head"><h3>{props.title}</h3><button type="button" class="link" onClick={props.onClose}>Close</button></div>
        {props.children}
      </div>
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="muted empty">{children}</p>;
}
