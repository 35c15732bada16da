import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema, timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { Document, Filter as FilterMessage } from "./gen/cairn/v1/databases_pb.js";
import { Operator } from "./gen/cairn/v1/databases_pb.js";
import type { Session, User } from "./gen/cairn/v1/account_pb.js";
import type { File as FileMessage } from "./gen/cairn/v1/storage_pb.js";

// Plain shapes for the facade: dates as Date, 64-bit values as numbers
// (every count and sequence Cairn hands out stays below 2^53), enums as
// strings.

export function date(ts: Timestamp | undefined): Date | undefined {
  return ts ? timestampDate(ts) : undefined;
}

export function num(v: bigint | undefined): number {
  return v === undefined ? 0 : Number(v);
}

/** The signed-in user, as the facade shows it. */
export interface Account {
  id: string;
  email: string;
  name: string;
  emailVerified: boolean;
  anonymous: boolean;
  mfaEnabled: boolean;
  labels: string[];
  prefs: JsonObject;
  createdAt: Date | undefined;
  updatedAt: Date | undefined;
}

export function account(u: User): Account {
  return {
    id: u.id, email: u.email, name: u.name, emailVerified: u.emailVerified, anonymous: u.anonymous,
    mfaEnabled: u.mfaEnabled, labels: u.labels, prefs: u.prefs ?? {}, createdAt: date(u.createdAt), updatedAt: date(u.updatedAt),
  };
}

/** A session, as the facade shows it. */
export interface SessionInfo {
  id: string;
  userId: string;
  provider: string;
  /** The session must still prove a second factor (`account.completeMfa`). */
  mfaPending: boolean;
  createdAt: Date | undefined;
  expiresAt: Date | undefined;
}

export function session(s: Session): SessionInfo {
  return { id: s.id, userId: s.userId, provider: s.provider, mfaPending: s.mfaPending, createdAt: date(s.createdAt), expiresAt: date(s.expiresAt) };
}

/** A document, as the facade shows it. */
export interface Doc<T extends JsonObject = JsonObject> {
  id: string;
  databaseId: string;
  collectionId: string;
  data: T;
  permissions: string[];
  createdAt: Date | undefined;
  updatedAt: Date | undefined;
  /** The stream sequence of the event that created it. */
  sequence: number;
  /** The sequence of its last write: pass it as `expectedVersion` for optimistic updates. */
  version: number;
}

export function doc<T extends JsonObject>(d: Document): Doc<T> {
  return {
    id: d.id, databaseId: d.databaseId, collectionId: d.collectionId, data: (d.data ?? {}) as T, permissions: d.permissions,
    createdAt: date(d.createdAt), updatedAt: date(d.updatedAt), sequence: num(d.sequence), version: num(d.version),
  };
}

/** A file's metadata, as the facade shows it. */
export interface FileInfo {
  id: string;
  bucketId: string;
  name: string;
  size: number;
  mimeType: string;
  sha256: string;
  permissions: string[];
  chunksTotal: number;
  chunksUploaded: number;
  createdAt: Date | undefined;
  updatedAt: Date | undefined;
}

export function file(f: FileMessage): FileInfo {
  return {
    id: f.id, bucketId: f.bucketId, name: f.name, size: num(f.size), mimeType: f.mimeType, sha256: f.sha256,
    permissions: f.permissions, chunksTotal: num(f.chunksTotal), chunksUploaded: num(f.chunksUploaded),
    createdAt: date(f.createdAt), updatedAt: date(f.updatedAt),
  };
}

/** A file as the storage routes answer it (protojson: 64-bit values are strings). */
export function fileFromJSON(j: Record<string, unknown>): FileInfo {
  const s = (k: string) => (typeof j[k] === "string" ? (j[k] as string) : "");
  const n = (k: string) => Number(j[k] ?? 0);
  const d = (k: string) => (typeof j[k] === "string" ? new Date(j[k] as string) : undefined);
  return {
    id: s("id"), bucketId: s("bucketId"), name: s("name"), size: n("size"), mimeType: s("mimeType"), sha256: s("sha256"),
    permissions: Array.isArray(j["permissions"]) ? (j["permissions"] as string[]) : [],
    chunksTotal: n("chunksTotal"), chunksUploaded: n("chunksUploaded"), createdAt: d("createdAt"), updatedAt: d("updatedAt"),
  };
}

/** Query operators, as strings. */
export type OperatorName =
  | "equal" | "notEqual" | "lessThan" | "lessThanEqual" | "greaterThan" | "greaterThanEqual"
  | "between" | "notBetween" | "isNull" | "isNotNull" | "startsWith" | "notStartsWith"
  | "endsWith" | "notEndsWith" | "contains" | "notContains" | "search" | "notSearch" | "and" | "or";

/** One condition of a query or a realtime subscription. */
export interface Filter {
  op: OperatorName;
  attribute?: string;
  values?: JsonValue[];
  filters?: Filter[];
}

/** Builders for filters: `Query.equal("done", false)`, `Query.or(Query.isNull("due"), …)`. */
export const Query = {
  equal: (attribute: string, ...values: JsonValue[]): Filter => ({ op: "equal", attribute, values }),
  notEqual: (attribute: string, ...values: JsonValue[]): Filter => ({ op: "notEqual", attribute, values }),
  lessThan: (attribute: string, value: JsonValue): Filter => ({ op: "lessThan", attribute, values: [value] }),
  lessThanEqual: (attribute: string, value: JsonValue): Filter => ({ op: "lessThanEqual", attribute, values: [value] }),
  greaterThan: (attribute: string, value: JsonValue): Filter => ({ op: "greaterThan", attribute, values: [value] }),
  greaterThanEqual: (attribute: string, value: JsonValue): Filter => ({ op: "greaterThanEqual", attribute, values: [value] }),
  between: (attribute: string, low: JsonValue, high: JsonValue): Filter => ({ op: "between", attribute, values: [low, high] }),
  isNull: (attribute: string): Filter => ({ op: "isNull", attribute }),
  isNotNull: (attribute: string): Filter => ({ op: "isNotNull", attribute }),
  startsWith: (attribute: string, value: string): Filter => ({ op: "startsWith", attribute, values: [value] }),
  endsWith: (attribute: string, value: string): Filter => ({ op: "endsWith", attribute, values: [value] }),
  contains: (attribute: string, ...values: JsonValue[]): Filter => ({ op: "contains", attribute, values }),
  search: (attribute: string, value: string): Filter => ({ op: "search", attribute, values: [value] }),
  and: (...filters: Filter[]): Filter => ({ op: "and", filters }),
  or: (...filters: Filter[]): Filter => ({ op: "or", filters }),
};

function operator(name: OperatorName): Operator {
  const key = name.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase() as keyof typeof Operator;
  const op = Operator[key];
  if (typeof op !== "number") throw new TypeError(`unknown filter operator ${JSON.stringify(name)}`);
  return op;
}

/** The Filter messages of facade filters. */
export function filters(fs: Filter[] | undefined): Partial<FilterMessage>[] {
  return (fs ?? []).map((f) => ({
    op: operator(f.op),
    attribute: f.attribute ?? "",
    values: (f.values ?? []).map((v) => fromJson(ValueSchema, v)),
    filters: filters(f.filters) as FilterMessage[],
  }));
}

/** The protojson form of facade filters (the realtime WebSocket's subscribe message). */
export function filtersJSON(fs: Filter[] | undefined): JsonValue[] {
  return (fs ?? []).map((f) => ({
    op: "OPERATOR_" + f.op.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase(),
    attribute: f.attribute ?? "",
    values: f.values ?? [],
    filters: filtersJSON(f.filters),
  }));
}
