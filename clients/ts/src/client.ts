import type { JsonObject } from "@bufbuild/protobuf";
import { createClient, createContextKey, createContextValues, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import type { DescService } from "@bufbuild/protobuf";
import { AccountService } from "./gen/cairn/v1/account_pb.js";
import { DatabasesService } from "./gen/cairn/v1/databases_pb.js";
import { StorageService } from "./gen/cairn/v1/storage_pb.js";
import { CookieAuthStore, LocalAuthStore, MemoryAuthStore, type AuthStore } from "./auth.js";
import { CairnError } from "./errors.js";
import { account, doc, filters, session, type Account, type Doc, type Filter, type SessionInfo } from "./convert.js";
import { Realtime, type RealtimeOptions, type RealtimeEvent, type Subscription, type WebSocketConstructor } from "./realtime.js";
import { fileURL, upload, type FileURLOptions, type UploadOptions } from "./storage.js";
import type { FileInfo } from "./convert.js";

export interface CairnOptions {
  /**
   * The API's base URL. Default, in a page served by Cairn (a site): the
   * same-origin API, `location.origin + "/_cairn"`, with the first-party
   * session cookie.
   */
  url?: string;
  /** The project id. Sent as `Cairn-Project` and used by the helpers' requests. */
  project?: string;
  /**
   * Where the session lives. Default: a cookie store on a Cairn site (no
   * `url` given), else `localStorage` in a browser, else memory.
   */
  auth?: AuthStore;
  /** The WebSocket constructor for realtime (default: the global one; in Node 20, `ws`). */
  webSocket?: WebSocketConstructor;
  /** The fetch to use (default: the global one). */
  fetch?: typeof globalThis.fetch;
  /** Send Connect's binary format instead of JSON. */
  binary?: boolean;
  /** More interceptors, run after the client's own. */
  interceptors?: Interceptor[];
}

/** Marks a call made as a guest: the stored session is not sent. */
const guestCall = createContextKey(false);

/** The Cairn client: generated service clients as properties, and helpers for the common paths. */
export class Cairn {
  readonly url: string;
  readonly project: string;
  readonly auth: AuthStore;
  readonly transport: Transport;
  readonly fetch: typeof globalThis.fetch;
  readonly webSocket: WebSocketConstructor | undefined;
  private readonly clients = new Map<DescService, unknown>();
  private rt: Realtime | undefined;

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
    this.project = opts.project ?? "";
    this.auth = auth ?? (typeof globalThis.localStorage !== "undefined" ? new LocalAuthStore() : new MemoryAuthStore());
    const baseFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    // A cookie session goes along on same-site calls to the API's origin too.
    this.fetch = this.auth.cookie ? (input, init) => baseFetch(input, { ...init, credentials: "include" }) : baseFetch;
    this.webSocket = opts.webSocket;
    this.transport = createConnectTransport({
      baseUrl: this.url,
      useBinaryFormat: opts.binary ?? false,
      fetch: this.fetch,
      interceptors: [this.interceptor, ...(opts.interceptors ?? [])],
    });
  }

  /** Adds Cairn-Project and the session; turns errors into CairnError; forgets a session the server refused. */
  private readonly interceptor: Interceptor = (next) => async (req) => {
    if (this.project && !req.header.has("Cairn-Project")) req.header.set("Cairn-Project", this.project);
    const token = req.contextValues.get(guestCall) ? "" : this.auth.token;
    if (token && !req.header.has("Authorization")) req.header.set("Authorization", "Bearer " + token);
    try {
      return await next(req);
    } catch (e) {
      // Connect wraps what an interceptor throws: the client's methods
      // turn it into a CairnError (wrap).
      this.refused(CairnError.from(e), token);
      throw e;
    }
  };

  /** Clears the store when the session it holds was refused (expired, deleted, blocked). */
  refused(err: CairnError, token: string): void {
    if (err.code !== "unauthenticated") return;
    if (token && this.auth.token === token) this.auth.clear();
    else if (this.auth.cookie && /session cookie/.test(err.message)) this.auth.clear();
  }

  /**
   * The generated client of any service: `cairn.client(TeamsService)`, or
   * `UsersService` with a key on a server. Only the services an app names
   * are in its bundle.
   */
  client<S extends DescService>(service: S): Client<S> {
    let c = this.clients.get(service) as Client<S> | undefined;
    if (!c) {
      c = wrap(service, createClient(service, this.transport));
      this.clients.set(service, c);
    }
    return c;
  }

  get account(): Client<typeof AccountService> { return this.client(AccountService); }
  get databases(): Client<typeof DatabasesService> { return this.client(DatabasesService); }
  get storage(): Client<typeof StorageService> { return this.client(StorageService); }

  /** The project id, or an error saying to pass one. */
  projectId(): string {
    if (!this.project) throw new CairnError("invalid_argument", "createCairn: pass project (the helpers' requests name it)", { violations: [{ field: "project", message: "required" }] });
    return this.project;
  }

  /** Signs up with email and password (does not sign in). */
  async signUp(input: { email: string; password: string; name?: string; userId?: string }): Promise<Account> {
    const res = await this.account.createAccount(
      { email: input.email, password: input.password, name: input.name ?? "", userId: input.userId ?? "" },
      { contextValues: guest() },
    );
    return account(res.user!);
  }

  /** Signs in with email and password; the session goes to the auth store (a cookie store keeps nothing: the browser has the cookie). */
  async signIn(input: { email: string; password: string }): Promise<SessionInfo> {
    const res = await this.account.createEmailPasswordSession(input, { contextValues: guest() });
    this.auth.save(res.secret);
    return session(res.session!);
  }

  /** Signs out: deletes the current session on the server and clears the store, whatever the server says. */
  async signOut(): Promise<void> {
    try {
      if (this.auth.token || this.auth.cookie) await this.account.deleteSession({ sessionId: "current" });
    } catch (e) {
      if (!(e instanceof CairnError && e.code === "unauthenticated")) throw e;
    } finally {
      this.auth.clear();
    }
  }

  /** The signed-in user, or null when nobody is (a refused session is cleared from the store). */
  async getAccount(): Promise<Account | null> {
    try {
      const res = await this.account.getAccount({});
      return account(res.user!);
    } catch (e) {
      if (e instanceof CairnError && e.code === "unauthenticated") return null;
      throw e;
    }
  }

  /** Documents of one collection, with plain types. */
  collection<T extends JsonObject = JsonObject>(databaseId: string, collectionId: string): Collection<T> {
    return new Collection<T>(this, databaseId, collectionId);
  }

  /** The realtime connection (one WebSocket per client, opened on the first subscription). */
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

  /** Headers of the plain HTTP routes (storage): project and session. */
  headers(): Record<string, string> {
    const h: Record<string, string> = {};
    if (this.project) h["Cairn-Project"] = this.project;
    if (this.auth.token) h["Authorization"] = "Bearer " + this.auth.token;
    return h;
  }
}

/** Makes every method of a generated client throw CairnError. */
function wrap<S extends DescService>(service: S, client: Client<S>): Client<S> {
  const out: Record<string, unknown> = {};
  const c = client as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const m of service.methods) {
    const fn = c[m.localName]!;
    if (m.methodKind === "unary") {
      out[m.localName] = (...a: unknown[]) => (fn(...a) as Promise<unknown>).catch((e: unknown) => Promise.reject(CairnError.from(e)));
    } else if (m.methodKind === "server_streaming") {
      out[m.localName] = async function* (...a: unknown[]) {
        try {
          yield* fn(...a) as AsyncIterable<unknown>;
        } catch (e) {
          throw CairnError.from(e);
        }
      };
    } else {
      out[m.localName] = fn;
    }
  }
  return out as Client<S>;
}

function guest() {
  return createContextValues().set(guestCall, true);
}

export interface ListOptions {
  filters?: Filter[];
  /** Attribute names; prefix with `-` for descending (`-$createdAt`). */
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
    return doc<T>(res.document!);
  }

  async get(id: string, opts: { select?: string[] } = {}): Promise<Doc<T>> {
    const res = await this.cairn.databases.getDocument({ ...this.ids(), documentId: id, select: opts.select ?? [] });
    return doc<T>(res.document!);
  }

  async list(opts: ListOptions = {}): Promise<{ documents: Doc<T>[]; total: number | undefined }> {
    const res = await this.cairn.databases.listDocuments({
      ...this.ids(),
      filters: filters(opts.filters) as never,
      orders: (opts.orders ?? []).map((o) => (o.startsWith("-") ? { attribute: o.slice(1), desc: true } : { attribute: o, desc: false })),
      limit: opts.limit ?? 0,
      offset: opts.offset ?? 0,
      cursorAfter: opts.cursorAfter ?? "",
      cursorBefore: opts.cursorBefore ?? "",
      select: opts.select ?? [],
      ...(opts.total === undefined ? {} : { total: opts.total }),
    });
    return { documents: res.documents.map((d) => doc<T>(d)), total: res.total === undefined ? undefined : Number(res.total) };
  }

  /** Partial update: the given attributes change, null clears one. */
  async update(id: string, data: Partial<T>, opts: WriteOptions = {}): Promise<Doc<T>> {
    const res = await this.cairn.databases.updateDocument({
      ...this.ids(), documentId: id, data: data as JsonObject,
      ...(opts.permissions ? { permissions: { values: opts.permissions } } : {}),
      ...(opts.expectedVersion === undefined ? {} : { expectedVersion: BigInt(opts.expectedVersion) }),
    });
    return doc<T>(res.document!);
  }

  async delete(id: string, opts: { expectedVersion?: number } = {}): Promise<void> {
    await this.cairn.databases.deleteDocument({
      ...this.ids(), documentId: id,
      ...(opts.expectedVersion === undefined ? {} : { expectedVersion: BigInt(opts.expectedVersion) }),
    });
  }
}

/** Creates a client. On a Cairn site, `createCairn({ project })` is all it takes. */
export function createCairn(opts: CairnOptions = {}): Cairn {
  return new Cairn(opts);
}
