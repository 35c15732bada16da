// Runs against a real Cairn (cmd/cairn TestTypeScriptClient starts one):
// CAIRN_URL, CAIRN_PROJECT (with a todos collection and an uploads bucket
// that signed-in users may write to) and CAIRN_KEY.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import WebSocket from "ws";
import { CairnError, MemoryAuthStore, Query, createCairn, type Cairn, type RealtimeEvent, type WebSocketConstructor } from "../src/index.js";
import * as connect from "../src/connect.js";
import { AccountService, DatabasesService, connectClient } from "../src/connect.js";
import type { TeamsService } from "../src/gen/cairn/v1/teams_pb.js";

const url = process.env["CAIRN_URL"] ?? "";
const project = process.env["CAIRN_PROJECT"] ?? "";
const skip = url === "" ? "CAIRN_URL is not set (run go test ./cmd/cairn -run TestTypeScriptClient)" : false;

let n = 0;
function client(opts: { fetch?: typeof fetch } = {}): Cairn {
  return createCairn({ url, project, auth: new MemoryAuthStore(), webSocket: WebSocket as unknown as WebSocketConstructor, ...opts });
}

async function signedIn(opts: { fetch?: typeof fetch } = {}): Promise<Cairn> {
  const c = client(opts);
  const email = `u${process.pid}-${++n}-${Date.now()}@example.com`;
  await c.signUp({ email, password: "correct horse battery" });
  await c.signIn({ email, password: "correct horse battery" });
  return c;
}

function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (cond()) resolve();
      else if (Date.now() > deadline) reject(new Error("timed out waiting for " + what));
      else setTimeout(tick, 10);
    };
    tick();
  });
}

async function rejects(p: Promise<unknown>): Promise<CairnError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CairnError, `want CairnError, got ${String(e)}`);
    return e;
  }
  assert.fail("want an error, got success");
}

type Todo = { title: string; done?: boolean; n?: number };

test("sign up, sign in, get the account, sign out", { skip }, async () => {
  const c = client();
  assert.equal(await c.getAccount(), null);
  const email = `ann-${Date.now()}@example.com`;
  const acc = await c.signUp({ email, password: "correct horse battery", name: "Ann" });
  assert.equal(acc.email, email);
  assert.equal(c.auth.token, "", "signing up does not sign in");
  const s = await c.signIn({ email, password: "correct horse battery" });
  assert.match(c.auth.token, /^cs_/);
  assert.ok(s.expiresAt instanceof Date && s.expiresAt.getTime() > Date.now());
  const me = await c.getAccount();
  assert.equal(me?.email, email);
  assert.equal(me?.name, "Ann");
  assert.equal(me?.id, s.userId);
  await c.signOut();
  assert.equal(c.auth.token, "");
  assert.equal(await c.getAccount(), null);
  const wrong = await rejects(c.signIn({ email, password: "wrong horse battery" }));
  assert.equal(wrong.code, "unauthenticated");
});

test("documents: create, get, update, list, delete", { skip }, async () => {
  const c = await signedIn();
  const todos = c.collection<Todo>("main", "todos");
  const a = await todos.create({ title: "milk" });
  assert.equal(a.data.title, "milk");
  assert.equal(a.data.done, false, "the default");
  assert.equal(typeof a.sequence, "number");
  assert.equal(a.version, a.sequence);
  assert.ok(a.createdAt instanceof Date);
  const b = await todos.create({ title: "bread", done: true }, { id: "bread-" + Date.now() });
  await todos.create({ title: "eggs", n: 3 });
  assert.equal((await todos.get(a.id)).data.title, "milk");
  const u = await todos.update(a.id, { done: true }, { expectedVersion: a.version });
  assert.equal(u.data.done, true);
  assert.ok(u.version > a.version);
  const stale = await rejects(todos.update(a.id, { done: false }, { expectedVersion: a.version }));
  assert.equal(stale.code, "aborted");

  const all = await todos.list({ orders: ["$createdAt"] });
  assert.deepEqual(all.documents.map((d) => d.data.title), ["milk", "bread", "eggs"]);
  assert.equal(all.total, 3);
  const done = await todos.list({ filters: [Query.equal("done", true)], orders: ["-title"] });
  assert.deepEqual(done.documents.map((d) => d.data.title), ["milk", "bread"]);
  const some = await todos.list({ filters: [Query.or(Query.greaterThan("n", 2), Query.startsWith("title", "br"))], orders: ["title"] });
  assert.deepEqual(some.documents.map((d) => d.data.title), ["bread", "eggs"]);

  // Another user sees none of them.
  const other = await signedIn();
  assert.equal((await other.collection<Todo>("main", "todos").list()).documents.length, 0);

  await todos.delete(b.id);
  const gone = await rejects(todos.get(b.id));
  assert.equal(gone.code, "not_found");
});

test("errors are CairnError with the field that failed", { skip }, async () => {
  const c = await signedIn();
  const todos = c.collection<Todo>("main", "todos");
  // protovalidate (a buf.validate.Violations detail)
  const bad = await rejects(todos.create({ title: "x" }, { id: "not an id!" }));
  assert.equal(bad.code, "invalid_argument");
  assert.equal(bad.field, "document.document_id");
  // the server's own field error (the schema)
  const missing = await rejects(todos.create({} as Todo));
  assert.equal(missing.code, "invalid_argument");
  assert.match(missing.field ?? "", /^data\.title/);
  const big = await rejects(todos.create({ title: "x".repeat(65) }));
  assert.match(big.field ?? "", /title/);
  // sign-up's password policy
  const pw = await rejects(client().signUp({ email: `p-${Date.now()}@example.com`, password: "short" }));
  assert.equal(pw.code, "invalid_argument");
  assert.equal(pw.field, "password");
});

test("a refused session is cleared from the store", { skip }, async () => {
  const c = client();
  let changes = 0;
  c.auth.onChange(() => changes++);
  c.auth.save(`cs_${project}_${"0".repeat(64)}`);
  assert.equal(await c.getAccount(), null);
  assert.equal(c.auth.token, "");
  assert.equal(changes, 2);

  // A real session deleted elsewhere (signed out on another device).
  const d = await signedIn();
  const token = d.auth.token;
  const elsewhere = client();
  elsewhere.auth.save(token);
  await elsewhere.signOut();
  const e = await rejects(d.collection<Todo>("main", "todos").list());
  assert.equal(e.code, "unauthenticated");
  assert.equal(d.auth.token, "", "cleared by the refused call");

  // Realtime with a refused session: an error and the end, never a silent guest.
  const r = client();
  r.auth.save(`cs_${project}_${"1".repeat(64)}`);
  const errs: CairnError[] = [];
  const sub = r.subscribe("documents", () => assert.fail("no event"), { onError: (e) => errs.push(e) });
  await until(() => sub.state === "closed", "the subscription to end");
  assert.equal(errs[0]?.code, "unauthenticated");
  assert.equal(r.auth.token, "");
});

test("realtime: resumes after the socket drops mid-stream, with no loss and no duplicate", { skip }, async () => {
  const c = await signedIn();
  const todos = c.collection<Todo>("main", "todos");
  const got: RealtimeEvent[] = [];
  const states: string[] = [];
  const sub = c.subscribe("databases.main.collections.todos.documents", (e) => got.push(e), {
    kinds: ["create"], onState: (s) => states.push(s), minDelay: 50,
  });
  await until(() => sub.state === "live", "live");
  const created: string[] = [];
  for (let i = 0; i < 30; i++) {
    created.push((await todos.create({ title: "t" + i, n: i })).id);
    if (i === 10 || i === 20) sub.reconnect(); // drop the socket while events flow
  }
  await until(() => got.length >= 30, "30 events");
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(got.map((e) => e.payload["id"] ?? e.payload["$id"]), created);
  assert.ok(got.every((e, i) => i === 0 || e.sequence > got[i - 1]!.sequence), "in order");
  assert.ok(got.every((e) => e.kind === "create" && e.events[0]!.endsWith(".create")));
  assert.ok(states.includes("connecting") && states.includes("live"));

  // Offline: events written meanwhile arrive on the next subscription, resumed from the store.
  sub.unsubscribe();
  assert.equal(sub.state, "closed");
  const missed: string[] = [];
  for (let i = 0; i < 3; i++) missed.push((await todos.create({ title: "offline" + i })).id);
  const again: RealtimeEvent[] = [];
  const sub2 = c.subscribe("databases.main.collections.todos.documents", (e) => again.push(e), { kinds: ["create"] });
  await until(() => again.length >= 3, "3 missed events");
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(again.map((e) => e.payload["id"] ?? e.payload["$id"]), missed);
  sub2.unsubscribe();
});

test("realtime: filters, and a guest sees nothing it may not read", { skip }, async () => {
  const c = await signedIn();
  const todos = c.collection<Todo>("main", "todos");
  const mine: RealtimeEvent[] = [];
  const sub = c.subscribe("databases.main.collections.todos.documents", (e) => mine.push(e), { filters: [Query.equal("done", true)], resume: false });
  const guest: RealtimeEvent[] = [];
  const g = client().subscribe("databases.main.collections.todos.documents", (e) => guest.push(e), { resume: false });
  await until(() => sub.state === "live" && g.state === "live", "live");
  await new Promise((r) => setTimeout(r, 100));
  await todos.create({ title: "open" });
  const d = await todos.create({ title: "closed", done: true });
  await until(() => mine.length >= 1, "the filtered event");
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(mine.map((e) => e.payload["id"] ?? e.payload["$id"]), [d.id]);
  assert.equal(guest.length, 0);
  sub.unsubscribe();
  g.unsubscribe();
});

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

test("upload: chunked, resumed after an interrupted chunk; file URLs", { skip }, async () => {
  const bytes = new Uint8Array(randomBytes(12 << 20)); // three chunks: 5 + 5 + 2 MiB
  const blob = new Blob([bytes]);
  let sent = 0;
  let requests = 0;
  let failOn = 2; // the second chunk's request fails before it is sent
  const flaky: typeof fetch = async (input, init) => {
    if (init?.method === "POST" && String(input).includes("/v1/storage/")) {
      requests++;
      if (requests === failOn) throw new TypeError("network error (test)");
      sent += (init.body as Blob).size;
    }
    return fetch(input, init);
  };
  const c = await signedIn({ fetch: flaky });
  const fileId = "f" + Date.now();
  const progress: number[] = [];
  const first = await rejects(c.upload("uploads", blob, { fileId, name: "big.bin", retries: 0, onProgress: (p) => progress.push(p.loaded) }));
  assert.equal(first.code, "unavailable");
  assert.deepEqual(progress, [5 << 20]);
  const up = await c.storage.getUpload({ projectId: project, bucketId: "uploads", fileId });
  assert.equal(Number(up.received), 5 << 20);

  // Again with the same id: only the rest is sent.
  sent = 0;
  failOn = -1;
  const f = await c.upload("uploads", blob, { fileId, name: "big.bin", onProgress: (p) => progress.push(p.loaded) });
  assert.equal(sent, 7 << 20);
  assert.equal(f.size, 12 << 20);
  assert.equal(f.sha256, sha256(bytes));
  assert.equal(f.name, "big.bin");
  assert.deepEqual(progress.slice(1), [10 << 20, 12 << 20]);

  // A chunk whose answer is lost after the server took it: retried from the server's resume point.
  let lost = false;
  const lossy: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    if (!lost && init?.method === "POST" && res.status === 202) {
      lost = true;
      throw new TypeError("connection reset (test)");
    }
    return res;
  };
  const c2 = await signedIn({ fetch: lossy });
  const f2 = await c2.upload("uploads", blob, { fileId: "g" + Date.now() });
  assert.ok(lost);
  assert.equal(f2.sha256, sha256(bytes));

  // URLs are built, not fetched; reading one needs the session (the file is the user's).
  const view = c.fileURL("uploads", f.id);
  assert.equal(view, `${url}/v1/storage/buckets/uploads/files/${f.id}/view?project=${project}`);
  assert.match(c.fileURL("uploads", f.id, { download: true, token: "t1" }), /\/download\?project=.*&token=t1$/);
  assert.match(c.fileURL("uploads", f.id, { preview: { width: 64, output: "webp" } }), /\/preview\?project=tsapp&width=64&output=webp$/);
  const res = await fetch(c.fileURL("uploads", f.id, { download: true }), { headers: c.headers() });
  assert.equal(res.status, 200);
  assert.equal(sha256(new Uint8Array(await res.arrayBuffer())), f.sha256);
  assert.equal((await fetch(view)).status, 404, "a guest does not see it");

  // A small file goes in one request.
  const small = await c.upload("uploads", new Blob(["hello"]), { name: "hello.txt" });
  assert.equal(small.size, 5);
  assert.match(small.mimeType, /^text\/plain/);
});

test("JSON clients: every method's local name maps to its proto name", () => {
  // The default entry's service(...) proxies turn `createTeam` into
  // `CreateTeam`: true of every method of every service.
  let methods = 0;
  for (const [name, svc] of Object.entries(connect)) {
    if (!name.endsWith("Service")) continue;
    for (const m of (svc as typeof AccountService).methods) {
      methods++;
      assert.equal(m.localName[0]!.toUpperCase() + m.localName.slice(1), m.name, `${name}.${m.name}`);
    }
  }
  assert.ok(methods > 50, `${methods} methods`);
});

test("JSON clients: typed calls of any service, int64 as strings", { skip }, async () => {
  const c = await signedIn();
  const teams = c.service<typeof TeamsService>("TeamsService");
  const t = await teams.createTeam({ projectId: project, teamId: "unique()", name: "Crew" });
  assert.equal(t.team?.name, "Crew");
  const listed = await c.databases.listDocuments({ projectId: project, databaseId: "main", collectionId: "todos" });
  assert.equal(listed.total, "0", "protojson int64: a string");
  const e = await rejects(teams.getTeam({ projectId: project, teamId: "nope" }));
  assert.equal(e.code, "not_found");
  assert.equal(e.status, 404);
});

test("@cairn/client/connect: generated clients over the same session, errors as CairnError", { skip }, async () => {
  const c = await signedIn();
  for (const opts of [{}, { binary: true }, { grpcWeb: true }]) {
    const acc = connectClient(c, AccountService, opts);
    const me = await acc.getAccount({});
    assert.match(me.user?.email ?? "", /@example\.com$/, JSON.stringify(opts));
    const dbs = connectClient(c, DatabasesService, opts);
    const d = await dbs.createDocument({ projectId: project, databaseId: "main", collectionId: "todos", document: { documentId: "unique()", data: { title: "typed" } } });
    assert.equal(typeof d.document?.sequence, "bigint");
    const bad = await rejects(dbs.createDocument({ projectId: project, databaseId: "main", collectionId: "todos", document: { documentId: "not an id!", data: { title: "x" } } }));
    assert.equal(bad.code, "invalid_argument");
    assert.equal(bad.field, "document.document_id", JSON.stringify(opts));
  }
  // A refused session is cleared here too.
  const d = client();
  d.auth.save(`cs_${project}_${"2".repeat(64)}`);
  const e = await rejects(connectClient(d, AccountService).getAccount({}));
  assert.equal(e.code, "unauthenticated");
  assert.equal(d.auth.token, "");
});
