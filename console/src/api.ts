// The console's link to the API: the operator key or an operator account's
// console session (co_…), kept in sessionStorage so it ends with the tab,
// sent as Bearer on every call to this origin, through @cairn/client's
// typed JSON clients.
import { createCairn, CairnError, MemoryAuthStore, type Cairn, type JsonClient } from "@cairn/client";
import type { ProjectsService } from "@cairn/gen/projects_pb.js";
import type { KeysService } from "@cairn/gen/keys_pb.js";
import type { EventsService } from "@cairn/gen/events_pb.js";
import type { DatabasesService } from "@cairn/gen/databases_pb.js";
import type { StorageService } from "@cairn/gen/storage_pb.js";
import type { SitesService } from "@cairn/gen/sites_pb.js";
import type { FunctionsService } from "@cairn/gen/functions_pb.js";
import type { OperatorsService } from "@cairn/gen/operators_pb.js";
import type { UsersService } from "@cairn/gen/users_pb.js";
import type { TeamsService } from "@cairn/gen/teams_pb.js";
import type { WebhooksService } from "@cairn/gen/webhooks_pb.js";

const keyName = "cairn.console.operatorKey";

export function storedKey(): string {
  try {
    return sessionStorage.getItem(keyName) ?? "";
  } catch {
    return "";
  }
}

export function storeKey(key: string): void {
  if (key) sessionStorage.setItem(keyName, key);
  else sessionStorage.removeItem(keyName);
}

/** Called when the API refuses the key: the app signs out. */
let onRefused: () => void = () => {};
export function whenRefused(f: () => void): void {
  onRefused = f;
}

const clients = new Map<string, Cairn>();

/** The client for project ("" for calls that name no project). */
export function cairn(project = ""): Cairn {
  const key = storedKey();
  const id = project + "\x00" + key;
  let c = clients.get(id);
  if (!c) {
    c = createCairn({ url: location.origin, key, auth: new MemoryAuthStore(), ...(project ? { project } : {}) });
    clients.set(id, c);
  }
  return c;
}

function svc<S>(name: string): JsonClient<S> {
  return new Proxy({}, {
    get: (_, m) => {
      if (typeof m !== "string" || m === "then") return undefined;
      return async (req: unknown) => {
        try {
          return await cairn().call(name, m[0]!.toUpperCase() + m.slice(1), req);
        } catch (e) {
          const err = CairnError.from(e);
          if (err.code === "unauthenticated") onRefused();
          throw err;
        }
      };
    },
  }) as JsonClient<S>;
}

export const api = {
  projects: svc<typeof ProjectsService>("ProjectsService"),
  keys: svc<typeof KeysService>("KeysService"),
  events: svc<typeof EventsService>("EventsService"),
  databases: svc<typeof DatabasesService>("DatabasesService"),
  storage: svc<typeof StorageService>("StorageService"),
  sites: svc<typeof SitesService>("SitesService"),
  functions: svc<typeof FunctionsService>("FunctionsService"),
  operators: svc<typeof OperatorsService>("OperatorsService"),
  users: svc<typeof UsersService>("UsersService"),
  teams: svc<typeof TeamsService>("TeamsService"),
  webhooks: svc<typeof WebhooksService>("WebhooksService"),
};

/** Who is signed in: the operator key (admin, no account) or an account. */
export type Me = { admin: boolean; email: string; roles: Record<string, string> };

let me: Me = { admin: false, email: "", roles: {} };

/** Asks the API who the stored credential is; a project key is refused. */
export async function loadMe(): Promise<Me> {
  const r = await api.operators.getCurrentOperator({});
  const roles: Record<string, string> = {};
  for (const x of r.operator?.roles ?? []) roles[x.projectId ?? ""] = x.role ?? "";
  me = { admin: r.admin ?? false, email: r.operator?.email ?? "", roles };
  return me;
}

export function currentMe(): Me {
  return me;
}

/**
 * What the signed-in operator may do in project, for hiding what the API
 * would refuse anyway: "owner" (everything), "write" (developer) or "read".
 */
export function may(project: string): "owner" | "write" | "read" {
  if (me.admin) return "owner";
  switch (me.roles[project]) {
    case "owner": return "owner";
    case "developer": return "write";
    default: return "read";
  }
}

/** A failure as the console shows it: the API's message, and the field it names. */
export function describe(e: unknown): { message: string; field?: string; code: string } {
  if (!(e instanceof CairnError) && e instanceof Error) return { message: e.message, code: "error" };
  const err = CairnError.from(e);
  return { message: err.message, code: err.code, ...(err.field ? { field: err.field } : {}) };
}

/** Every page of a list call, up to max items. */
export async function all<T>(page: (token: string) => Promise<{ items: T[]; next: string }>, max = 1000): Promise<T[]> {
  const out: T[] = [];
  let token = "";
  do {
    const r = await page(token);
    out.push(...r.items);
    token = r.next;
  } while (token && out.length < max);
  return out;
}

export function when(ts: string | undefined): string {
  if (!ts) return "";
  const d = new Date(ts);
  return isNaN(d.getTime()) ? ts : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function bytes(n: string | number | undefined): string {
  const v = Number(n ?? 0);
  if (v < 1024) return `${v} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let x = v / 1024;
  let i = 0;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x.toFixed(x < 10 ? 1 : 0)} ${units[i]}`;
}

/** JSON, as protojson's Struct and Value carry it. */
export type JsonValue = number | string | boolean | null | JsonObject | JsonValue[];
export type JsonObject = { [k: string]: JsonValue };
