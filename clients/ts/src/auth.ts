/**
 * Where a client keeps who it is: the session's bearer secret (or nothing,
 * when the session is an HttpOnly cookie the browser holds) and small state
 * such as realtime positions. One interface, storage pluggable.
 */
export interface AuthStore {
  /** The bearer secret (`cs_…` or a JWT); "" when there is none or the session is a cookie. */
  readonly token: string;
  /** True when the session is the browser's first-party cookie: no secret is ever held in JS. */
  readonly cookie: boolean;
  /** Keeps a new session's secret (a cookie store ignores it). */
  save(token: string): void;
  /** Forgets the session (signed out, expired or refused). */
  clear(): void;
  /** Calls listener on every save and clear; returns a function that stops it. */
  onChange(listener: (token: string) => void): () => void;
  /** Small state kept beside the session (realtime positions). */
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** The part of the Web Storage API a store needs (localStorage, sessionStorage, or your own). */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

function memoryStorage(): KeyValueStorage {
  const m = new Map<string, string>();
  return {
    getItem: (k) => m.get(k) ?? null,
    setItem: (k, v) => void m.set(k, v),
    removeItem: (k) => void m.delete(k),
  };
}

const tokenKey = "token";

/** A store over any key–value storage, every key under a prefix. */
export class StorageAuthStore implements AuthStore {
  readonly cookie: boolean = false;
  private readonly listeners = new Set<(token: string) => void>();
  private cached: string;

  constructor(
    private readonly storage: KeyValueStorage = memoryStorage(),
    private readonly prefix = "cairn.",
  ) {
    this.cached = this.getItem(tokenKey) ?? "";
  }

  get token(): string {
    return this.cached;
  }

  save(token: string): void {
    this.cached = token;
    this.setItem(tokenKey, token);
    this.emit();
  }

  clear(): void {
    this.cached = "";
    this.removeItem(tokenKey);
    this.emit();
  }

  onChange(listener: (token: string) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  getItem(key: string): string | null {
    try {
      return this.storage.getItem(this.prefix + key);
    } catch {
      return null;
    }
  }

  setItem(key: string, value: string): void {
    try {
      this.storage.setItem(this.prefix + key, value);
    } catch {
      // Storage full or denied (private mode): state stays in memory only.
    }
  }

  removeItem(key: string): void {
    try {
      this.storage.removeItem(this.prefix + key);
    } catch {
      // As above.
    }
  }

  protected emit(): void {
    for (const l of this.listeners) l(this.cached);
  }
}

/** Keeps the session in memory: gone with the page (tests, servers, the most cautious apps). */
export class MemoryAuthStore extends StorageAuthStore {
  constructor() {
    super(memoryStorage());
  }
}

/** Keeps the session in `localStorage` (an app on another origin than the API, using the bearer secret). */
export class LocalAuthStore extends StorageAuthStore {
  constructor(prefix = "cairn.", storage: KeyValueStorage = globalThis.localStorage) {
    super(storage ?? memoryStorage(), prefix);
  }
}

/**
 * The session is the browser's HttpOnly, first-party cookie, set by
 * signing in on a Cairn site's `/_cairn/` API: nothing secret is stored in
 * JS. Other state (realtime positions) goes to `localStorage` when there is
 * one. The default on a Cairn site.
 */
export class CookieAuthStore extends StorageAuthStore {
  override readonly cookie = true;

  constructor(prefix = "cairn.", storage?: KeyValueStorage) {
    super(storage ?? globalThis.localStorage ?? memoryStorage(), prefix);
  }

  override get token(): string {
    return "";
  }

  override save(): void {
    this.emit();
  }

  override clear(): void {
    this.emit();
  }
}
