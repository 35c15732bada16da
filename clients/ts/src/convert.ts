import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import type { DocumentJson, FilterJson, OperatorJson } from "./gen/cairn/v1/databases_pb.js";
import type { SessionJson, UserJson } from "./gen/cairn/v1/account_pb.js";
import type { FileJson } from "./gen/cairn/v1/storage_pb.js";

// Plain shapes for the facade, from the API's JSON (protojson): dates as
// Date, 64-bit values (strings in protojson) as numbers (every count and
// sequence Cairn hands out stays below 2^53), enums as strings.

export function date(ts: string | undefined): Date | undefined {
  return ts ? new Date(ts) : undefined;
}

export function num(v: string | number | undefined): number {
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

export function account(u: UserJson = {}): Account {
  return {
    id: u.id ?? "", email: u.email ?? "", name: u.name ?? "", emailVerified: !!u.emailVerified, anonymous: !!u.anonymous,
    mfaEnabled: !!u.mfaEnabled, labels: u.labels ?? [], prefs: u.prefs ?? {}, createdAt: date(u.createdAt), updatedAt: date(u.updatedAt),
  };
}

/** A session, as the facade shows it. */
export interface SessionInfo {
  id: string;
  userId: string;
  provider: string;
  /** The session must still prove a second factor (`AccountService.CompleteMfa`). */
  mfaPending: boolean;
  createdAt: Date | undefined;
  expiresAt: Date | undefined;
}

export function session(s: SessionJson = {}): SessionInfo {
  return {
    id: s.id ?? "", userId: s.userId ?? "", provider: s.provider ?? "", mfaPending: !!s.mfaPending,
    createdAt: date(s.createdAt), expiresAt: date(s.expiresAt),
  };
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

export function doc<T extends JsonObject>(d: DocumentJson = {}): Doc<T> {
  return {
    id: d.id ?? "", databaseId: d.databaseId ?? "", collectionId: d.collectionId ?? "", data: (d.data ?? {}) as T,
    permissions: d.permissions ?? [], createdAt: date(d.createdAt), updatedAt: date(d.updatedAt),
    sequence: num(d.sequence), version: num(d.version),
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

/** A file as the API answers it (protojson: 64-bit values are strings). */
export function file(f: FileJson = {}): FileInfo {
  return {
    id: f.id ?? "", bucketId: f.bucketId ?? "", name: f.name ?? "", size: num(f.size), mimeType: f.mimeType ?? "",
    sha256: f.sha256 ?? "", permissions: f.permissions ?? [], chunksTotal: num(f.chunksTotal),
    chunksUploaded: num(f.chunksUploaded), createdAt: date(f.createdAt), updatedAt: date(f.updatedAt),
  };
}

/** Query operators, as strings. */
export type OperatorName =
  | "equal" | "notEqual" | "lessThan" | "lessThanEqual" | "greaterThan" | "greaterThanEqual"
  | "between" | "notBetween" | "isNull" | "isNotNull" | "startsWith" | "notStartsWith"
  | "endsWith" | "notEndsWith" | "contains" | "notContains" | "search" | "notSearch" | "and" | "or"
  | "exists" | "notExists" | "containsAny" | "containsAll" | "regex"
  | "createdBefore" | "createdAfter" | "createdBetween" | "updatedBefore" | "updatedAfter" | "updatedBetween"
  | "distanceEqual" | "distanceNotEqual" | "distanceGreaterThan" | "distanceLessThan"
  | "intersects" | "notIntersects" | "elemMatch";

/** A geographic point: [longitude, latitude] in degrees. */
export type Point = [number, number];

/** One condition of a query or a realtime subscription. */
export interface Filter {
  op: OperatorName;
  attribute?: string;
  values?: JsonValue[];
  filters?: Filter[];
}

function iso(t: string | Date): string {
  return typeof t === "string" ? t : t.toISOString();
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
  exists: (attribute: string): Filter => ({ op: "exists", attribute }),
  notExists: (attribute: string): Filter => ({ op: "notExists", attribute }),
  containsAny: (attribute: string, ...values: JsonValue[]): Filter => ({ op: "containsAny", attribute, values }),
  containsAll: (attribute: string, ...values: JsonValue[]): Filter => ({ op: "containsAll", attribute, values }),
  /** An RE2 pattern (Go syntax, unanchored), at most 256 bytes. */
  regex: (attribute: string, pattern: string): Filter => ({ op: "regex", attribute, values: [pattern] }),
  /** Times as RFC 3339 strings or Dates; before/after are strict, between is inclusive. */
  createdBefore: (at: string | Date): Filter => ({ op: "createdBefore", values: [iso(at)] }),
  createdAfter: (at: string | Date): Filter => ({ op: "createdAfter", values: [iso(at)] }),
  createdBetween: (from: string | Date, to: string | Date): Filter => ({ op: "createdBetween", values: [iso(from), iso(to)] }),
  updatedBefore: (at: string | Date): Filter => ({ op: "updatedBefore", values: [iso(at)] }),
  updatedAfter: (at: string | Date): Filter => ({ op: "updatedAfter", values: [iso(at)] }),
  updatedBetween: (from: string | Date, to: string | Date): Filter => ({ op: "updatedBetween", values: [iso(from), iso(to)] }),
  /** Distances on the sphere from a point attribute to `point`, in meters (degrees of arc when `meters` is false). */
  distanceEqual: (attribute: string, point: Point, distance: number, meters = true): Filter =>
    ({ op: "distanceEqual", attribute, values: [point, distance, meters] }),
  distanceNotEqual: (attribute: string, point: Point, distance: number, meters = true): Filter =>
    ({ op: "distanceNotEqual", attribute, values: [point, distance, meters] }),
  distanceGreaterThan: (attribute: string, point: Point, distance: number, meters = true): Filter =>
    ({ op: "distanceGreaterThan", attribute, values: [point, distance, meters] }),
  distanceLessThan: (attribute: string, point: Point, distance: number, meters = true): Filter =>
    ({ op: "distanceLessThan", attribute, values: [point, distance, meters] }),
  /** The point lies in (or on) a polygon: one closed ring, or rings (outline, then holes); at most 1,000 points. */
  intersects: (attribute: string, polygon: Point[] | Point[][]): Filter => ({ op: "intersects", attribute, values: [rings(polygon)] }),
  notIntersects: (attribute: string, polygon: Point[] | Point[][]): Filter => ({ op: "notIntersects", attribute, values: [rings(polygon)] }),
  /** An array attribute with one element meeting every filter; the filters test the element (give them attribute "" or the array's). */
  elemMatch: (attribute: string, ...filters: Filter[]): Filter => ({ op: "elemMatch", attribute, filters }),
  and: (...filters: Filter[]): Filter => ({ op: "and", filters }),
  or: (...filters: Filter[]): Filter => ({ op: "or", filters }),
};

function rings(polygon: Point[] | Point[][]): Point[][] {
  return typeof polygon[0]?.[0] === "number" ? [polygon as Point[]] : (polygon as Point[][]);
}

/** The protojson form of facade filters (ListDocuments, the realtime WebSocket's subscribe message). */
export function filtersJSON(fs: Filter[] | undefined): FilterJson[] {
  return (fs ?? []).map((f) => ({
    op: ("OPERATOR_" + f.op.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase()) as OperatorJson,
    attribute: f.attribute ?? "",
    values: f.values ?? [],
    filters: filtersJSON(f.filters),
  }));
}
