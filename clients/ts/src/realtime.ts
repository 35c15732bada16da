import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import type { Cairn } from "./client.js";
import { CairnError } from "./errors.js";
import { filtersJSON, type Filter } from "./convert.js";

/** The part of the WebSocket API realtime uses (the browser's, or the `ws` package's in Node). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export type EventKindName = "create" | "update" | "delete";

/** One event, as the facade shows it. */
export interface RealtimeEvent {
  /** The stream sequence: the subscription resumes after the last one seen. */
  sequence: number;
  /** Appwrite-style names, most specific first (`databases.main.collections.todos.documents.d1.create`). */
  events: string[];
  /** The subscription's channels the event matched. */
  channels: string[];
  timestamp: Date | undefined;
  kind: EventKindName | "unspecified";
  /** The resource after the event (for a delete, its last state), as the API shows it. */
  payload: JsonObject;
}

/**
 * connecting: opening the socket; resuming: catching up on what was
 * missed; live: caught up; reconnecting: waiting to reconnect (backoff);
 * closed: unsubscribed.
 */
export type RealtimeState = "connecting" | "resuming" | "live" | "reconnecting" | "closed";

export interface RealtimeOptions {
  /** AND-ed attribute conditions (documents channels only). */
  filters?: Filter[];
  /** Only these kinds of event (default: all). */
  kinds?: EventKindName[];
  /**
   * Resume from the last sequence this store saw for the same subscription
   * (default true); false starts from now. A number resumes after it.
   */
  resume?: boolean | number;
  /** State changes (connection, catch-up, live, backoff). */
  onState?: (state: RealtimeState) => void;
  /** The server could not resume (the missed events left the log): reload, the subscription goes on from now. */
  onResync?: (info: { firstAvailable: number; reason: string }) => void;
  /** Refusals and closings the server explained. */
  onError?: (err: CairnError) => void;
  /** Backoff: first delay and ceiling in ms (default 500 and 30,000). */
  minDelay?: number;
  maxDelay?: number;
}

const kindNames: Record<string, EventKindName> = { EVENT_KIND_CREATE: "create", EVENT_KIND_UPDATE: "update", EVENT_KIND_DELETE: "delete" };

/** Opens subscriptions: one WebSocket each (its filters are the connection's). */
export class Realtime {
  private readonly subs = new Set<Subscription>();

  constructor(private readonly cairn: Cairn) {}

  /**
   * Subscribes to channels (`documents`, `databases.main.collections.todos.documents`,
   * `files`, `account`…). The socket reconnects with exponential backoff and
   * resumes after the last sequence seen: no event is lost or repeated.
   */
  subscribe(channels: string | string[], callback: (e: RealtimeEvent) => void, opts: RealtimeOptions = {}): Subscription {
    const s = new Subscription(this.cairn, typeof channels === "string" ? [channels] : channels, callback, opts, () => this.subs.delete(s));
    this.subs.add(s);
    return s;
  }

  /** Closes every subscription. */
  close(): void {
    for (const s of [...this.subs]) s.unsubscribe();
  }
}

export class Subscription {
  state: RealtimeState = "connecting";
  /** The last sequence seen (delivered, or passed over by the server for this subscription). */
  sequence = 0;
  private ws: WebSocketLike | undefined;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private readonly key: string;
  private readonly listeners = new Set<(s: RealtimeState) => void>();
  /** The credential of the current socket, and whether the server has answered it with a state. */
  private sentToken = "";
  private greeted = false;
  private readonly rooms = new Map<string, Presence>();

  constructor(
    private readonly cairn: Cairn,
    readonly channels: string[],
    private readonly callback: (e: RealtimeEvent) => void,
    private readonly opts: RealtimeOptions,
    private readonly done: () => void,
  ) {
    this.key = "realtime." + JSON.stringify([cairn.project, [...channels].sort(), opts.kinds ?? [], opts.filters ?? []]);
    if (typeof opts.resume === "number") this.sequence = opts.resume;
    else if (opts.resume !== false) this.sequence = Number(cairn.auth.getItem(this.key) ?? 0) || 0;
    if (opts.onState) this.listeners.add(opts.onState);
    this.connect();
  }

  /**
   * The presence of one of the subscription's channels (default its first):
   * `join(payload)` to be present, `members` and `on(listener)` to see who
   * is. Watching starts now; every reconnect watches (and joins) again.
   */
  presence(channel: string = this.channels[0]!): Presence {
    let p = this.rooms.get(channel);
    if (!p) {
      p = new Presence(channel, (m) => this.sendNow(m));
      this.rooms.set(channel, p);
      p.declare();
    }
    return p;
  }

  /** Sends a client message if the socket is open; a reconnect sends presence again anyway. */
  private sendNow(m: object): void {
    if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(m));
  }

  /** Calls listener on each state change; returns a function that stops it. */
  onState(listener: (s: RealtimeState) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Ends the subscription and forgets nothing: a later subscribe to the same channels resumes. */
  unsubscribe(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = undefined;
    ws?.close(1000, "");
    this.setState("closed");
    this.done();
  }

  /** Drops the socket and reconnects at once (after a network change), resuming where it was. */
  reconnect(): void {
    if (this.closed) return;
    const ws = this.ws;
    this.ws = undefined;
    ws?.close(1000, "");
    clearTimeout(this.timer);
    this.attempt = 0;
    this.connect();
  }

  private setState(s: RealtimeState): void {
    if (this.state === s) return;
    this.state = s;
    for (const l of this.listeners) l(s);
  }

  private connect(): void {
    const Ctor = this.cairn.webSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Ctor) throw new TypeError("realtime: no WebSocket here; pass createCairn({ webSocket })");
    const token = this.cairn.credential();
    const q = new URLSearchParams();
    if (this.cairn.project) q.set("project", this.cairn.project);
    for (const c of this.channels) q.append("channels", c);
    for (const k of this.opts.kinds ?? []) q.append("kinds", k);
    if (this.sequence > 0) q.set("after", String(this.sequence));
    // The subscription starts once the credential is in: nothing is judged as a guest's.
    if (token) q.set("authenticate", "first");
    const url = this.cairn.url.replace(/^http/, "ws") + "/v1/realtime?" + q.toString();
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    const ws = new Ctor(url);
    this.ws = ws;
    this.sentToken = token;
    this.greeted = false;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      if (token) ws.send(JSON.stringify({ authenticate: token }));
      if (this.opts.filters?.length) {
        ws.send(JSON.stringify({
          subscribe: {
            channels: this.channels,
            kinds: (this.opts.kinds ?? []).map((k) => "EVENT_KIND_" + k.toUpperCase()),
            filters: filtersJSON(this.opts.filters),
          },
        }));
      }
      // A new connection is a new member: declare presence again.
      for (const p of this.rooms.values()) p.declare();
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      const text = typeof ev.data === "string" ? ev.data : new TextDecoder().decode(ev.data as ArrayBuffer);
      let frame: Frame;
      try {
        frame = JSON.parse(text) as Frame;
      } catch {
        return;
      }
      this.frame(frame);
    };
    ws.onclose = () => {
      if (ws !== this.ws) return;
      this.ws = undefined;
      this.retry();
    };
    ws.onerror = () => {
      // onclose follows.
    };
  }

  private retry(): void {
    if (this.closed) return;
    const min = this.opts.minDelay ?? 500;
    const max = this.opts.maxDelay ?? 30_000;
    const delay = Math.min(max, min * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt++;
    this.setState("reconnecting");
    this.timer = setTimeout(() => this.connect(), delay);
  }

  private advance(seq: number): void {
    if (seq <= this.sequence) return;
    this.sequence = seq;
    this.cairn.auth.setItem(this.key, String(seq));
  }

  private frame(f: Frame): void {
    if (f.state) {
      this.greeted = true;
      this.attempt = 0;
      this.setState(f.state.status === "CONNECTION_STATUS_RESUMING" ? "resuming" : "live");
      this.advance(Number(f.state.sequence ?? 0));
    } else if (f.event) {
      this.attempt = 0;
      const seq = Number(f.event.sequence ?? 0);
      if (seq <= this.sequence) return; // seen before the reconnect
      this.advance(seq);
      this.callback({
        sequence: seq,
        events: f.event.events ?? [],
        channels: f.event.channels ?? [],
        timestamp: f.event.timestamp ? new Date(f.event.timestamp) : undefined,
        kind: kindNames[f.event.kind ?? ""] ?? "unspecified",
        payload: (f.event.payload ?? {}) as JsonObject,
      });
    } else if (f.resync) {
      const firstAvailable = Number(f.resync.firstAvailable ?? 0);
      this.sequence = 0;
      this.advance(Math.max(0, firstAvailable - 1));
      this.opts.onResync?.({ firstAvailable, reason: f.resync.reason ?? "" });
    } else if (f.closing) {
      if (this.sentToken && !this.greeted) {
        // The credential was refused (authenticate=first): never go on as a
        // guest. The store forgets the session; the subscription ends.
        const err = new CairnError("unauthenticated", f.closing.reason ?? "the session was refused");
        this.cairn.refused(err, this.sentToken);
        this.opts.onError?.(err);
        this.unsubscribe();
        return;
      }
      this.opts.onError?.(new CairnError("unavailable", f.closing.reason ?? "closing"));
    } else if (f.presenceSync) {
      this.rooms.get(f.presenceSync.channel ?? "")?.sync(f.presenceSync);
    } else if (f.presence) {
      this.rooms.get(f.presence.channel ?? "")?.change(f.presence);
    } else if (f.rejected) {
      this.opts.onError?.(new CairnError("invalid_argument", f.rejected.reason ?? "rejected"));
    }
  }
}

/** A SubscribeResponse frame (protojson: 64-bit values are strings). */
interface Frame {
  state?: { status?: string; sequence?: string };
  event?: { sequence?: string; events?: string[]; channels?: string[]; timestamp?: string; kind?: string; payload?: JsonValue };
  resync?: { firstAvailable?: string; reason?: string };
  closing?: { reason?: string };
  rejected?: { reason?: string };
  presenceSync?: { channel?: string; members?: MemberFrame[]; connectionId?: string };
  presence?: { channel?: string; action?: string; member?: MemberFrame };
}

interface MemberFrame {
  id?: string;
  userId?: string;
  payload?: JsonValue;
  joinedAt?: string;
  updatedAt?: string;
}

/** One connection present on a channel: the same user in two tabs is two members. */
export interface PresenceMember {
  /** The connection's member id (`Presence.self` for this one). */
  id: string;
  /** Empty for a guest or a key. */
  userId: string;
  payload: JsonObject;
  joinedAt: Date | undefined;
  updatedAt: Date | undefined;
}

/** sync: the whole set arrived (on watching, and after each reconnect). */
export type PresenceAction = "sync" | "join" | "update" | "leave";

export interface PresenceEvent {
  action: PresenceAction;
  /** The member that changed (not for sync). */
  member?: PresenceMember;
  /** Everyone present after the change. */
  members: PresenceMember[];
}

const presenceActions: Record<string, PresenceAction> = {
  PRESENCE_ACTION_JOIN: "join", PRESENCE_ACTION_UPDATE: "update", PRESENCE_ACTION_LEAVE: "leave",
};

function memberOf(m: MemberFrame): PresenceMember {
  return {
    id: m.id ?? "",
    userId: m.userId ?? "",
    payload: (m.payload ?? {}) as JsonObject,
    joinedAt: m.joinedAt ? new Date(m.joinedAt) : undefined,
    updatedAt: m.updatedAt ? new Date(m.updatedAt) : undefined,
  };
}

/** Presence on one channel of a subscription (Subscription.presence). */
export class Presence {
  /** Who is present now, by member id. */
  readonly members = new Map<string, PresenceMember>();
  /** This connection's member id (set once the server answers). */
  self = "";
  private payload: JsonObject | undefined;
  private joined = false;
  private readonly listeners = new Set<(e: PresenceEvent) => void>();

  constructor(readonly channel: string, private readonly send: (m: object) => void) {}

  /** Be present with payload (JSON, at most 1 KiB), or replace it: others see join, then update. */
  join(payload: JsonObject = {}): void {
    this.payload = payload;
    this.joined = true;
    this.send({ presenceJoin: { channel: this.channel, payload } });
  }

  /** Same as join: a new payload for a member already present. */
  update(payload: JsonObject): void {
    this.join(payload);
  }

  /** Stop being present (still watching). */
  leave(): void {
    this.joined = false;
    this.send({ presenceLeave: { channel: this.channel } });
  }

  /** Calls listener on every change; returns a function that stops it. */
  on(listener: (e: PresenceEvent) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** @internal watches (and joins) on a new connection. */
  declare(): void {
    if (this.joined) this.send({ presenceJoin: { channel: this.channel, payload: this.payload ?? {} } });
    else this.send({ presenceWatch: { channel: this.channel } });
  }

  /** @internal */
  sync(f: NonNullable<Frame["presenceSync"]>): void {
    this.self = f.connectionId ?? this.self;
    this.members.clear();
    for (const m of f.members ?? []) this.members.set(m.id ?? "", memberOf(m));
    this.emit({ action: "sync", members: [...this.members.values()] });
  }

  /** @internal */
  change(f: NonNullable<Frame["presence"]>): void {
    const action = presenceActions[f.action ?? ""];
    if (!action || !f.member) return;
    const member = memberOf(f.member);
    if (action === "leave") this.members.delete(member.id);
    else this.members.set(member.id, member);
    this.emit({ action, member, members: [...this.members.values()] });
  }

  private emit(e: PresenceEvent): void {
    for (const l of this.listeners) l(e);
  }
}
