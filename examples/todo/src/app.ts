// The todo app: @cairn/client, as a Cairn site or from another origin.
// As a site (config.js empty) the API is the site's own /_cairn/ prefix
// (same origin), the project the site's and the session its first-party
// HttpOnly cookie: nothing secret in JavaScript. From another origin
// (config.js names the API and the project; the origin must be in the
// project's allowed_origins) the session is a bearer secret in localStorage:
// cookies do not cross sites.
import { CairnError, createCairn, type Doc, type RealtimeEvent } from "@cairn/client";

type Todo = { title: string; done: boolean; image?: string };

const config = (globalThis as { todoConfig?: { api?: string; project?: string } }).todoConfig ?? {};
const cairn = createCairn({ ...(config.api ? { url: config.api } : {}), ...(config.project ? { project: config.project } : {}) });
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
      void imageSrc(t.data.image).then((src) => (img.src = src), fail);
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

// Previews: with the site's cookie an <img> loads the URL itself; with a
// bearer session (another origin) the app fetches it and shows a blob: URL.
const images = new Map<string, Promise<string>>();
function imageSrc(id: string): Promise<string> {
  let src = images.get(id);
  if (!src) {
    const opts = { preview: { width: 128, height: 128 } };
    src = cairn.auth.cookie ? Promise.resolve(cairn.fileURL(bucket, id, opts)) : cairn.fileBlob(bucket, id, opts).then((b) => URL.createObjectURL(b));
    src.catch(() => images.delete(id));
    images.set(id, src);
  }
  return src;
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
  for (const src of images.values()) void src.then((u) => u.startsWith("blob:") && URL.revokeObjectURL(u), () => {});
  images.clear();
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
