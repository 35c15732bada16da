import type { DescMessage, JsonObject, MessageJsonType } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { AccountService } from "./gen/cairn/v1/account_pb.js";
import type { DatabasesService } from "./gen/cairn/v1/databases_pb.js";
import type { StorageService } from "./gen/cairn/v1/storage_pb.js";
import { CookieAuthStore, LocalAuthStore, MemoryAuthStore, type AuthStore } from "./auth.js";
import { CairnError } from "./errors.js";
import { account, doc, filtersJSON, session, type Account, type Doc, type Filter, type SessionInfo } from "./convert.js";
import { Realtime, type RealtimeOptions, type RealtimeEvent, type Subscription, type WebSocketConstructor } from "./realtime.js";
import { Passkeys, type PasskeyOptions } from "./passkeys.js";
import { fileBlob, fileURL, upload, type FileURLOptions, type UploadOptions } from "./storage.js";
import type { FileInfo } from "./convert.js";

export interface CairnOptions {
  /**
   * The API's base URL. Default, in a page served by Cairn (a site): the
   * same-origin API, `location.origin + "/_cairn"`, with the first-party
   * session cookie.
   */
  url?: string;
  /**
   * The project id. Sent as `Cairn-Project` and used by the helpers'
   * requests. Not needed on a Cairn site's own API (no `url`, or a `url`
   * ending in `/_cairn`): the site's host names the project.
   */
  project?: string;
  /**
   * An API key (`ck_…`), for servers and scripts (Node): every call is made
   * as the key, never as a signed-in user, and a refused key is an
   * `unauthenticated` error on every call (nothing is cleared, nothing goes
   * on as a guest). Never put a key in a page.
   */
  key?: string;
  /**
   * Where the session lives. Default: a cookie store on a Cairn site (no
   * `url` given), else `localStorage` in a browser, else memory.
   */
  auth?: AuthStore;
  /** The WebSocket constructor for realtime (default: the global one; in Node 20, `ws`). */
  webSocket?: WebSocketConstructor;
  /** The fetch to use (default: the global one). */
  fetch?: typeof globalThis.fetch;
}

/** Options of one call. */
export interface CallOptions {
  signal?: AbortSignal;
  /** More request headers. */
  headers?: Record<string, string>;
  /** Call as a guest: the stored session is not sent. */
  guest?: boolean;
}

/**
 * A service's unary methods over Connect's JSON protocol, typed by the
 * generated JSON types (protojson: 64-bit integers are strings, enums their
 * names, timestamps RFC 3339 strings): `cairn.service<typeof TeamsService>("TeamsService")`.
 */
export type JsonClient<S> = S extends GenService<infer M extends GenServiceMethods>
  ? {
      [K in keyof M as M[K]["methodKind"] extends "unary" ? K : never]: (
        request: MessageJsonType<M[K]["input"] & DescMessage>,
        options?: CallOptions,
      ) => Promise<MessageJsonType<M[K]["output"] & DescMessage>>;
    }
  : never;

/**
 * The Cairn client. It speaks Connect's JSON protocol with `fetch` (no
 * protobuf runtime): `account`, `databases`, `storage` and `service(…)` are
 * typed JSON clients, the helpers (auth, documents, realtime, files) answer
 * plain values. The generated Connect-ES clients (binary, gRPC-Web, every
 * message type) are in `@cairn/client/connect`.
 */
export class Cairn {
  readonly url: string;
  readonly project: string;
  readonly auth: AuthStore;
  readonly fetch: typeof globalThis.fetch;
  readonly webSocket: WebSocketConstructor | undefined;
  /** The API key every call is made as ("" for none). */
  readonly key: string;
  /** True when url is a Cairn site's own API (`…/_cairn`): the site's host names the project. */
  readonly site: boolean;
  private readonly services = new Map<string, unknown>();
  private rt: Realtime | undefined;
  private pk: Passkeys | undefined;

  constructor(opts: CairnOptions = {}) {
    const loc = (globalThis as { location?: { origin: string } }).location;
    let url = opts.url;
    let auth = opts.auth;
    if (url === undefined) {
      if (!loc) throw new TypeError("createCairn: pass url (outside a browser there is no location.origin)");
      url = loc.origin + "/_cairn";
      auth ??= new CookieAuthStore();
    }
    this.url = url.replace(/\/+$/, "");
    this.site = this.url.endsWith("/_cairn");
    this.project = opts.project ?? "";
    this.key = opts.key ?? "";
    this.auth = auth ?? (typeof globalThis.localStorage !== "undefined" ? new LocalAuthStore() : new MemoryAuthStore());
    const baseFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    // A cookie session goes along on same-site calls to the API's origin too.
    this.fetch = this.auth.cookie ? (input, init) => baseFetch(input, { ...init, credentials: "include" }) : baseFetch;
    this.webSocket = opts.webSocket;
  }

  /**
   * Calls a unary method with Connect's JSON protocol: POST
   * `<url>/cairn.v1.<Service>/<Method>`, the request's protojson in, the
   * answer's protojson out. Throws CairnError; a refused session is cleared
   * from the store.
   */
  async call<O = unknown>(service: string, method: string, request: unknown, opts: CallOptions = {}): Promise<O> {
    const token = opts.guest ? "" : this.credential();
    const name = service.includes(".") ? service : "cairn.v1." + service;
    const endpoint = `${this.url}/${name}/${method}`;
    let res: Response;
    let body: unknown;
    try {
      res = await this.fetch(endpoint, {
        method: "POST",
        headers: { ...this.headers(token), "Content-Type": "application/json", "Connect-Protocol-Version": "1", ...opts.headers },
        body: JSON.stringify(request ?? {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      body = await res.json().catch(() => undefined);
    } catch (e) {
      throw CairnError.network(e, this.url);
    }
    if (res.ok) return (body ?? {}) as O;
    const err = CairnError.fromHTTP(res.status, body, endpoint);
    this.refused(err, token);
    throw err;
  }

  /**
   * A service's typed JSON client: `cairn.service<typeof TeamsService>("TeamsService").createTeam({…})`.
   * `import type { TeamsService } from "@cairn/client/gen/teams"` keeps the
   * descriptor out of the bundle: only the types are used.
   */
  service<S>(name: string): JsonClient<S> {
    let c = this.services.get(name) as JsonClient<S> | undefined;
    if (!c) {
      // Methods' local names are their proto names with the first letter lower-cased.
      c = new Proxy({}, {
        get: (_, m) => typeof m !== "string" || m === "then" ? undefined
          : (req: unknown, o?: CallOptions) => this.call(name, m[0]!.toUpperCase() + m.slice(1), req, o),
      }) as JsonClient<S>;
      this.services.set(name, c);
    }
    return c;
  }

  get account(): JsonClient<typeof AccountService> { return this.service("AccountService"); }
  get databases(): JsonClient<typeof DatabasesService> { return this.service("DatabasesService"); }
  get storage(): JsonClient<typeof StorageService> { return this.service("StorageService"); }

  /** The bearer credential calls send: the key, else the store's session ("" for none, or a cookie). */
  credential(): string {
    return this.key || this.auth.token;
  }

  /**
   * After an `unauthenticated` answer to a call that sent token: clears the
   * store when the session it holds was refused (expired, signed out,
   * blocked), and says in err's message which credential was refused.
   */
  refused(err: CairnError, token: string): void {
    if (err.code !== "unauthenticated") return;
    if (token && token === this.key) {
      err.message += " (the client's API key was refused: deleted, expired, mistyped or of another server)";
    } else if (token && this.auth.token === token) {
      this.auth.clear();
      err.message += ` (the stored ${token.startsWith("cs_") ? "session" : "JWT"} was refused: expired, signed out or the user blocked; it is cleared from the store: sign in again)`;
    } else if (this.auth.cookie && /session cookie/.test(err.message)) this.auth.clear();
  }

  /** The project id the helpers' requests name ("" on a Cairn site: its host names it), or an error saying to pass one. */
  projectId(): string {
    if (!this.project && !this.site) {
      throw new CairnError("invalid_argument", `createCairn: pass project: the API at ${this.url} serves many projects (only a Cairn site's own /_cairn API knows its project)`, {
        violations: [{ field: "project", message: "required" }],
      });
    }
    return this.project;
  }

  /** Signs up with email and password (does not sign in). */
  async signUp(input: { email: string; password: string; name?: string; userId?: string }): Promise<Account> {
    const res = await this.account.createAccount(input, { guest: true });
    return account(res.user);
  }

  /** Signs in with email and password; the session goes to the auth store (a cookie store keeps nothing: the browser has the cookie). */
  async signIn(input: { email: string; password: string }): Promise<SessionInfo> {
    const res = await this.account.createEmailPasswordSession(input, { guest: true });
    this.auth.save(res.secret ?? "");
    return session(res.session);
  }

  /** Signs out: deletes the current session on the server and clears the store, whatever the server says. */
  async signOut(): Promise<void> {
    try {
      if (!this.key && (this.auth.token || this.auth.cookie)) await this.account.deleteSession({ sessionId: "current" });
    } catch (e) {
      if (!(e instanceof CairnError && e.code === "unauthenticated")) throw e;
    } finally {
      this.auth.clear();
    }
  }

  /** The signed-in user, or null when nobody is (a refused session is cleared from the store). */
  async getAccount(): Promise<Account | null> {
    try {
      return account((await this.account.getAccount({})).user);
    } catch (e) {
      if (e instanceof CairnError && e.code === "unauthenticated") return null;
      throw e;
    }
  }

  /** The signed-in user's passkeys (WebAuthn): `register()`, `list()`, `delete(id)`. */
  get passkeys(): Passkeys {
    this.pk ??= new Passkeys(this);
    return this.pk;
  }

  /**
   * Signs in with a passkey (the browser asks the user to pick one and
   * unlock it): usernameless, or only `email`'s passkeys. The session goes
   * to the auth store.
   */
  signInWithPasskey(opts: PasskeyOptions & { email?: string } = {}): Promise<SessionInfo> {
    return this.passkeys.signIn(opts);
  }

  /** Documents of one collection, with plain types. */
  collection<T extends JsonObject = JsonObject>(databaseId: string, collectionId: string): Collection<T> {
    return new Collection<T>(this, databaseId, collectionId);
  }

  /** The realtime connection (one WebSocket per subscription). */
  get realtime(): Realtime {
    this.rt ??= new Realtime(this);
    return this.rt;
  }

  /** Subscribes to channels; see Realtime.subscribe. */
  subscribe(channels: string | string[], callback: (e: RealtimeEvent) => void, opts?: RealtimeOptions): Subscription {
    return this.realtime.subscribe(channels, callback, opts);
  }

  /** Uploads a file in 5 MiB chunks, resuming an interrupted upload of the same fileId. */
  upload(bucket: string, data: Blob, opts?: UploadOptions): Promise<FileInfo> {
    return upload(this, bucket, data, opts);
  }

  /** The URL of a file's view, download or preview (built, not fetched). */
  fileURL(bucket: string, fileId: string, opts?: FileURLOptions): string {
    return fileURL(this, bucket, fileId, opts);
  }

  /**
   * A file's view, download or preview, fetched with the client's session:
   * for an `<img>` of a file that is not public when the session is a bearer
   * secret (an app on another origin): `img.src = URL.createObjectURL(await cairn.fileBlob(…))`.
   */
  fileBlob(bucket: string, fileId: string, opts?: FileURLOptions & { signal?: AbortSignal }): Promise<Blob> {
    return fileBlob(this, bucket, fileId, opts);
  }

  /** Headers of a request: project and credential (the key or the stored session unless token is given). */
  headers(token = this.credential()): Record<string, string> {
    const h: Record<string, string> = {};
    if (this.project) h["Cairn-Project"] = this.project;
    if (token) h["Authorization"] = "Bearer " + token;
    return h;
  }
}

export interface ListOptions {
  filters?: Filter[];
  /** Attribute names; prefix with `-` for descending (`-$createdAt`); `$random` shuffles (orderRandom). */
  orders?: string[];
  limit?: number;
  offset?: number;
  cursorAfter?: string;
  cursorBefore?: string;
  select?: string[];
  /** Count the matches (default true). */
  total?: boolean;
}

export interface WriteOptions {
  /** Appwrite permission strings: `read("user:…")`, `update("team:…")`. */
  permissions?: string[];
  /** Fail with `aborted` unless the document is still at this version. */
  expectedVersion?: number;
}

/** The documents of one collection, with plain types. */
export class Collection<T extends JsonObject = JsonObject> {
  constructor(private readonly cairn: Cairn, readonly databaseId: string, readonly collectionId: string) {}

  private ids() {
    return { projectId: this.cairn.projectId(), databaseId: this.databaseId, collectionId: this.collectionId };
  }

  /** Creates a document; `id` default `unique()`. */
  async create(data: T, opts: WriteOptions & { id?: string } = {}): Promise<Doc<T>> {
    const res = await this.cairn.databases.createDocument({
      ...this.ids(),
      document: { documentId: opts.id ?? "unique()", data, ...(opts.permissions ? { permissions: { values: opts.permissions } } : {}) },
    });
    return doc<T>(res.document);
  }

  async get(id: string, opts: { select?: string[] } = {}): Promise<Doc<T>> {
    const res = await this.cairn.databases.getDocument({ ...this.ids(), documentId: id, select: opts.select ?? [] });
    return doc<T>(res.document);
  }

  async list(opts: ListOptions = {}): Promise<{ documents: Doc<T>[]; total: number | undefined }> {
    const res = await this.cairn.databases.listDocuments({
      ...this.ids(),
      filters: filtersJSON(opts.filters),
      orders: (opts.orders ?? []).map((o) => (o.startsWith("-") ? { attribute: o.slice(1), desc: true } : { attribute: o, desc: false })),
      limit: opts.limit ?? 0,
      offset: opts.offset ?? 0,
      cursorAfter: opts.cursorAfter ?? "",
      cursorBefore: opts.cursorBefore ?? "",
      select: opts.select ?? [],
      ...(opts.total === undefined ? {} : { total: opts.total }),
    });
    return { documents: (res.documents ?? []).map((d) => doc<T>(d)), total: res.total === undefined ? undefined : Number(res.total) };
  }

  /** Partial update: the given attributes change, null clears one. */
  async update(id: string, data: Partial<T>, opts: WriteOptions = {}): Promise<Doc<T>> {
    const res = await this.cairn.databases.updateDocument({
      ...this.ids(), documentId: id, data: data as JsonObject,
      ...(opts.permissions ? { permissions: { values: opts.permissions } } : {}),
      ...(opts.expectedVersion === undefined ? {} : { expectedVersion: String(opts.expectedVersion) }),
    });
    return doc<T>(res.document);
  }

  async delete(id: string, opts: { expectedVersion?: number } = {}): Promise<void> {
    await this.cairn.databases.deleteDocument({
      ...this.ids(), documentId: id,
      ...(opts.expectedVersion === undefined ? {} : { expectedVersion: String(opts.expectedVersion) }),
    });
  }
}

/**
 * Creates a client. On a Cairn site, `createCairn()` is all it takes; from
 * another origin `createCairn({ url, project })`; a server `createCairn({ url, project, key })`.
 */
export function createCairn(opts: CairnOptions = {}): Cairn {
  return new Cairn(opts);
}
