// Runs against a real Cairn (cmd/cairn TestTypeScriptClient starts one):
// CAIRN_URL, CAIRN_PROJECT (with a todos collection and an uploads bucket
// that signed-in users may write to) and CAIRN_KEY.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:net";
import WebSocket from "ws";
import { CairnError, MemoryAuthStore, Query, createCairn, type Cairn, type PresenceEvent, type RealtimeEvent, type WebSocketConstructor } from "../src/index.js";
import * as connect from "../src/connect.js";
import { AccountService, DatabasesService, connectClient } from "../src/connect.js";
import type { KeysService } from "../src/gen/cairn/v1/keys_pb.js";
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

type Todo = { title: string; done?: boolean; n?: number; at?: [number, number]; scores?: number[] };

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
  // The operators Appwrite 1.8 added, through the same builders.
  const later = await todos.list({ filters: [Query.exists("n"), Query.regex("title", "^e.g"), Query.createdAfter(a.createdAt)] });
  assert.deepEqual(later.documents.map((d) => d.data.title), ["eggs"]);
  const badRegex = await rejects(todos.list({ filters: [Query.regex("title", "a(")] }));
  assert.equal(badRegex.code, "invalid_argument");
  assert.match(badRegex.message, /RE2/);
  assert.match(badRegex.field ?? "", /values\[0\]$/);
  // Geo and elemMatch.
  await todos.update(a.id, { at: [2.35, 48.85], scores: [70, 95] });
  await todos.update(b.id, { at: [-0.13, 51.51], scores: [85] });
  const near = await todos.list({ filters: [Query.distanceLessThan("at", [2.3, 48.9], 50_000)] });
  assert.deepEqual(near.documents.map((d) => d.data.title), ["milk"]);
  const inBox = await todos.list({ filters: [Query.intersects("at", [[-1, 48], [3, 48], [3, 52], [-1, 52], [-1, 48]])], orders: ["title"] });
  assert.deepEqual(inBox.documents.map((d) => d.data.title), ["bread", "milk"]);
  const between = await todos.list({ filters: [Query.elemMatch("scores", Query.greaterThan("", 80), Query.lessThan("", 90))] });
  assert.deepEqual(between.documents.map((d) => d.data.title), ["bread"]);
  const badPoint = await rejects(todos.list({ filters: [Query.distanceLessThan("at", [0, 95], 10)] }));
  assert.equal(badPoint.code, "invalid_argument");
  assert.match(badPoint.message, /latitude/);
  const shuffled = await todos.list({ orders: ["$random"] });
  assert.deepEqual(shuffled.documents.map((d) => d.data.title).sort(), ["bread", "eggs", "milk"]);

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
  assert.match(e.message, /the stored session was refused: expired, signed out or the user blocked; it is cleared from the store: sign in again/);
  assert.equal(d.auth.token, "", "cleared by the refused call");
  // The next call goes as a guest, knowingly: the app shows its sign-in form.
  assert.equal(await d.getAccount(), null);

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

test("realtime presence: join, update, re-declared on reconnect, leave; a guest is refused", { skip }, async () => {
  const lobby = "databases.main.collections.lobby.documents";
  const a = await signedIn();
  const b = await signedIn();
  const me = (await a.getAccount())!;
  const subA = a.subscribe(lobby, () => {}, { resume: false, minDelay: 50 });
  const pa = subA.presence();
  pa.join({ status: "online" });
  const subB = b.subscribe(lobby, () => {}, { resume: false });
  const pb = subB.presence();
  const seen: PresenceEvent[] = [];
  pb.on((e) => seen.push(e));
  const present = (status: string) => [...pb.members.values()].some((m) => m.userId === me.id && m.payload["status"] === status);
  await until(() => present("online") && pa.self !== "", "a's member on b");
  const first = pa.self;
  assert.ok(pb.members.has(first));

  pa.update({ status: "away" });
  await until(() => present("away"), "a's update");
  assert.ok(seen.some((e) => e.action === "update" && e.member?.id === first));

  // A new connection is a new member, declared again with the same payload.
  subA.reconnect();
  await until(() => pa.self !== first && pb.members.has(pa.self) && !pb.members.has(first), "a re-declared");
  assert.equal(pb.members.get(pa.self)?.payload["status"], "away");

  const errs: CairnError[] = [];
  const g = client().subscribe(lobby, () => {}, { resume: false, onError: (e) => errs.push(e) });
  g.presence();
  await until(() => errs.length > 0, "the guest's refusal");
  assert.match(errs[0]!.message, /not found/);
  g.unsubscribe();

  const last = pa.self;
  subA.unsubscribe();
  await until(() => !pb.members.has(last), "a's leave");
  assert.ok(seen.some((e) => e.action === "leave" && e.member?.id === last));
  subB.unsubscribe();
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("an expired session (a JWT of one second) is refused and cleared", { skip }, async () => {
  const c = await signedIn();
  const { jwt } = await c.account.createJWT({ ttlSeconds: 1 });
  const d = client();
  d.auth.save(jwt ?? "");
  let cleared = 0;
  d.auth.onChange((t) => t === "" && cleared++);
  assert.equal((await d.getAccount())?.id, (await c.getAccount())?.id, "valid at first");
  // The server tolerates a few seconds of clock skew: ask until it expires.
  let e: CairnError | undefined;
  for (const deadline = Date.now() + 15_000; !e && Date.now() < deadline; await sleep(500)) {
    e = await d.collection<Todo>("main", "todos").list().then(() => undefined, (x: unknown) => x as CairnError);
  }
  assert.ok(e instanceof CairnError, "refused within 15 s");
  assert.equal(e.code, "unauthenticated");
  assert.equal(e.status, 401);
  assert.match(e.message, /the stored JWT was refused.*cleared from the store/);
  assert.equal(d.auth.token, "");
  assert.equal(cleared, 1);
  // The session it came from goes on.
  assert.notEqual(await c.getAccount(), null);
});

test("a wrong or missing project id is a CairnError naming it", { skip }, async () => {
  const nope = createCairn({ url, project: "no-such-project", auth: new MemoryAuthStore() });
  const missing = await rejects(nope.signUp({ email: `w-${Date.now()}@example.com`, password: "correct horse battery" }));
  assert.equal(missing.code, "not_found");
  assert.equal(missing.status, 404);
  assert.match(missing.message, /project "no-such-project" not found/);

  // A session of this project sent with another project's id.
  const c = await signedIn();
  const other = createCairn({ url, project: "no-such-project", auth: new MemoryAuthStore() });
  other.auth.save(c.auth.token);
  const denied = await rejects(other.collection<Todo>("main", "todos").list());
  assert.equal(denied.code, "permission_denied");
  assert.match(denied.message, /session does not belong to project "no-such-project"/);
  assert.equal(other.auth.token, c.auth.token, "a session refused for another project is not cleared: it is not expired");

  // No project at all, with a url that is not a site's: said before any request is sent.
  const none = createCairn({ url, auth: new MemoryAuthStore() });
  const req = await rejects(none.collection<Todo>("main", "todos").list());
  assert.equal(req.code, "invalid_argument");
  assert.equal(req.field, "project");
  assert.match(req.message, /pass project/);
  const guest = await rejects(none.signUp({ email: `n-${Date.now()}@example.com`, password: "correct horse battery" }));
  assert.equal(guest.code, "invalid_argument");
  assert.match(guest.message, /Cairn-Project: required/);

  // A url that is not Cairn's API.
  const wrong = createCairn({ url: url + "/api", project, auth: new MemoryAuthStore() });
  const nf = await rejects(wrong.getAccount());
  assert.equal(nf.code, "not_found");
  assert.match(nf.message, /^HTTP 404 from .*\/api\/cairn\.v1\.AccountService\/GetAccount, not an answer of Cairn's API: is the client's url right/);
});

test("an API key (servers, Node): calls as the key; a revoked key is refused on every call, never a guest", { skip }, async () => {
  const key = process.env["CAIRN_KEY"] ?? "";
  const admin = createCairn({ url, project, key });
  const keys = admin.service<typeof KeysService>("KeysService");
  const made = await keys.createKey({ projectId: project, name: "ts-temp", scopes: { scopes: ["databases.read"] } });
  const server = createCairn({ url, project, key: made.secret ?? "" });
  assert.equal(server.auth.token, "", "the key is no session");
  const dbs = await server.databases.listDatabases({ projectId: project });
  assert.ok((dbs.databases ?? []).some((d) => d.id === "main"));
  // A call outside its scopes: refused, the key kept.
  const scope = await rejects(server.storage.createBucket({ projectId: project, bucketId: "nope", name: "Nope" }));
  assert.equal(scope.code, "permission_denied");

  await keys.deleteKey({ projectId: project, keyId: made.key?.id ?? "" });
  for (let i = 0; i < 2; i++) {
    const e = await rejects(server.databases.listDatabases({ projectId: project }));
    assert.equal(e.code, "unauthenticated", `call ${i + 1}`);
    assert.match(e.message, /the client's API key was refused: deleted, expired, mistyped or of another server/);
  }
  assert.equal(server.key, made.secret, "kept: the key is the client's identity");
});

test("a server that is down: unavailable, saying it could not be reached", async () => {
  // A port nothing listens on: bound, then closed.
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const down = `http://127.0.0.1:${port}`;
  const c = createCairn({ url: down, project: "tsapp", auth: new MemoryAuthStore() });
  c.auth.save("cs_tsapp_" + "3".repeat(64));
  for (const call of [
    () => c.getAccount(),
    () => c.signIn({ email: "a@example.com", password: "correct horse battery" }),
    () => c.collection<Todo>("main", "todos").list(),
    () => c.fileBlob("uploads", "f1", { preview: { width: 64 } }),
    () => c.upload("uploads", new Blob(["hi"]), { retries: 0 }),
    () => connectClient(c, AccountService).getAccount({}),
    () => connectClient(c, AccountService, { grpcWeb: true }).getAccount({}),
  ]) {
    const e = await rejects(call());
    assert.equal(e.code, "unavailable", e.message);
    assert.equal(e.status, undefined);
    assert.match(e.message, new RegExp(`could not reach the Cairn server at ${down} \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\): is it running and the client's url right\\?`));
    assert.ok(e.cause instanceof TypeError, "the fetch error is the cause");
  }
  assert.equal(c.auth.token.length, 73, "a server that is down clears no session");
  // Aborted: canceled, not unavailable.
  const ac = new AbortController();
  ac.abort();
  const canceled = await rejects(c.call("AccountService", "GetAccount", {}, { signal: ac.signal }));
  assert.equal(canceled.code, "canceled");
});
