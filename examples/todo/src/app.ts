// The todo app: @cairn/client on a Cairn site. The API is the site's own
// /_cairn/ prefix (same origin) and the session its first-party HttpOnly
// cookie: nothing secret in JavaScript.
import { CairnError, createCairn, type Doc, type RealtimeEvent } from "@cairn/client";

type Todo = { title: string; done: boolean; image?: string };

// The project is in the site's host name: todo.<project>.<sites domain>
// (or <deployment>.todo.<project>.… for a preview); ?project= overrides.
const labels = location.hostname.split(".");
const project = new URLSearchParams(location.search).get("project") ?? labels[labels.indexOf("todo") + 1] ?? "";
const cairn = createCairn({ project });
const todos = cairn.collection<Todo>("main", "todos");
const bucket = "images";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const items = new Map<string, Doc<Todo>>();
let stop: (() => void) | undefined;

function fail(e: unknown): void {
  const msg = e instanceof CairnError ? `${e.message}${e.field ? ` (${e.field})` : ""}` : String(e);
  $("error").textContent = msg;
}

function render(): void {
  const ul = $("todos");
  const sorted = [...items.values()].sort((a, b) => (a.createdAt?.getTime() ?? 0) - (b.createdAt?.getTime() ?? 0));
  ul.replaceChildren(...sorted.map((t) => {
    const li = document.createElement("li");
    li.dataset["id"] = t.id;
    li.className = t.data.done ? "done" : "";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.className = "toggle";
    box.checked = t.data.done;
    box.onchange = () => void todos.update(t.id, { done: box.checked }).then(upsert, fail);
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = t.data.title;
    li.append(box, title);
    if (t.data.image) {
      const img = document.createElement("img");
      img.className = "preview";
      img.alt = "";
      img.src = cairn.fileURL(bucket, t.data.image, { preview: { width: 128, height: 128 } });
      li.append(img);
    }
    const del = document.createElement("button");
    del.className = "delete";
    del.textContent = "Delete";
    del.onclick = () => void todos.delete(t.id).then(() => remove(t.id), fail);
    li.append(del);
    return li;
  }));
  $("empty").hidden = items.size > 0;
}

function upsert(t: Doc<Todo>): void {
  const old = items.get(t.id);
  if (old && old.version > t.version) return; // an older write arriving late
  items.set(t.id, t);
  render();
}

function remove(id: string): void {
  items.delete(id);
  render();
}

/** A realtime event's payload is the document as the API shows it (protojson). */
function fromEvent(e: RealtimeEvent): Doc<Todo> {
  const p = e.payload as { id?: string; data?: Todo; createdAt?: string; version?: string; sequence?: string; permissions?: string[] };
  return {
    id: p.id ?? "", databaseId: "main", collectionId: "todos", data: p.data ?? { title: "", done: false },
    permissions: p.permissions ?? [], createdAt: p.createdAt ? new Date(p.createdAt) : undefined, updatedAt: undefined,
    sequence: Number(p.sequence ?? 0), version: Number(p.version ?? e.sequence),
  };
}

async function show(): Promise<void> {
  $("error").textContent = "";
  const me = await cairn.getAccount();
  $("auth").hidden = !!me;
  $("main").hidden = !me;
  document.body.dataset["state"] = me ? "signed-in" : "signed-out";
  stop?.();
  stop = undefined;
  items.clear();
  if (!me) return;
  $("who").textContent = me.email;
  const sub = cairn.subscribe("databases.main.collections.todos.documents", (e) => {
    if (e.kind === "delete") remove(fromEvent(e).id);
    else upsert(fromEvent(e));
  }, { resume: false, onState: (s) => { $("live").textContent = s; document.body.dataset["live"] = s; } });
  stop = () => sub.unsubscribe();
  const { documents } = await todos.list({ orders: ["$createdAt"], limit: 100 });
  for (const d of documents) upsert(d);
  render();
}

$<HTMLFormElement>("auth").onsubmit = (ev) => {
  ev.preventDefault();
  cairn.signIn({ email: $<HTMLInputElement>("email").value, password: $<HTMLInputElement>("password").value }).then(show).catch(fail);
};
$("signup").onclick = () => {
  const email = $<HTMLInputElement>("email").value, password = $<HTMLInputElement>("password").value;
  cairn.signUp({ email, password }).then(() => cairn.signIn({ email, password })).then(show).catch(fail);
};
$("signout").onclick = () => void cairn.signOut().then(show, fail);

$<HTMLFormElement>("add").onsubmit = async (ev) => {
  ev.preventDefault();
  const title = $<HTMLInputElement>("title"), image = $<HTMLInputElement>("image");
  try {
    const todo: Todo = { title: title.value, done: false };
    const f = image.files?.[0];
    if (f) {
      const up = await cairn.upload(bucket, f, { onProgress: (p) => ($("progress").textContent = `${Math.round((100 * p.loaded) / p.total)}%`) });
      todo.image = up.id;
    }
    upsert(await todos.create(todo));
    title.value = "";
    image.value = "";
    $("progress").textContent = "";
  } catch (e) {
    fail(e);
  }
};

show().catch(fail);
