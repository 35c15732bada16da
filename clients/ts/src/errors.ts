import { Code, ConnectError } from "@connectrpc/connect";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/** Connect's error codes, as they appear on the wire. */
export type ErrorCode =
  | "canceled"
  | "unknown"
  | "invalid_argument"
  | "deadline_exceeded"
  | "not_found"
  | "already_exists"
  | "permission_denied"
  | "resource_exhausted"
  | "failed_precondition"
  | "aborted"
  | "out_of_range"
  | "unimplemented"
  | "internal"
  | "unavailable"
  | "data_loss"
  | "unauthenticated";

const codeNames: ErrorCode[] = [
  "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists",
  "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range",
  "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated",
];

/** One field that failed validation. */
export interface FieldViolation {
  /** The request field, as the proto names it: `document.document_id`, `data.views`. */
  field: string;
  message: string;
  /** protovalidate's rule id (`string.pattern`), when the rule came from the schema. */
  rule?: string;
}

/**
 * CairnError is the one error every call of the client throws: the Connect
 * code as a string, the server's message, and the request field that failed
 * (from protovalidate's violations or the server's own field errors).
 */
export class CairnError extends Error {
  override readonly name = "CairnError";
  /** The Connect code, e.g. `invalid_argument`, `unauthenticated`. */
  readonly code: ErrorCode;
  /** The first field that failed, if the error names one. */
  readonly field: string | undefined;
  /** Every field that failed (protovalidate reports them all). */
  readonly violations: FieldViolation[];
  /** The HTTP status, for the plain HTTP routes (storage). */
  readonly status: number | undefined;

  constructor(code: ErrorCode, message: string, opts: { violations?: FieldViolation[]; status?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.violations = opts.violations ?? [];
    this.field = this.violations[0]?.field;
    this.status = opts.status;
  }

  /** Converts anything thrown by a call (a ConnectError, a network failure) into a CairnError. */
  static from(err: unknown): CairnError {
    if (err instanceof CairnError) return err;
    const ce = ConnectError.from(err);
    const violations = violationsOf(ce);
    const code = codeNames[ce.code - 1] ?? "unknown";
    return new CairnError(code, ce.rawMessage, { violations, cause: err });
  }

  /** Builds the error of a plain HTTP route's JSON answer `{code, message}`. */
  static fromHTTP(status: number, body: unknown): CairnError {
    const b = (typeof body === "object" && body !== null ? body : {}) as { code?: unknown; message?: unknown };
    const code = typeof b.code === "string" && (codeNames as string[]).includes(b.code) ? (b.code as ErrorCode) : httpCode(status);
    const message = typeof b.message === "string" ? b.message : `HTTP ${status}`;
    return new CairnError(code, message, { violations: fieldOfMessage(message), status });
  }
}

function httpCode(status: number): ErrorCode {
  switch (status) {
    case 400: return "invalid_argument";
    case 401: return "unauthenticated";
    case 403: return "permission_denied";
    case 404: return "not_found";
    case 409: return "already_exists";
    case 412: return "failed_precondition";
    case 413: case 429: return "resource_exhausted";
    case 503: return "unavailable";
    default: return status >= 500 ? "internal" : "unknown";
  }
}

function violationsOf(ce: ConnectError): FieldViolation[] {
  for (const d of ce.details) {
    if ("type" in d && d.type === "buf.validate.Violations" && d.value instanceof Uint8Array) {
      try {
        const v = decodeViolations(d.value);
        if (v.length > 0) return v;
      } catch {
        // A detail we cannot read: fall back to the message.
      }
    }
  }
  return fieldOfMessage(ce.rawMessage);
}

// The server's own field errors read "<field>: <message>"; the field is a
// proto path (letters, digits, _, ., [ ], quotes for map keys).
const fieldPrefix = /^([A-Za-z_][\w.]*(?:\[[^\]]*\][\w.]*)*): /;

function fieldOfMessage(message: string): FieldViolation[] {
  const m = fieldPrefix.exec(message);
  if (!m || m[1] === "validation error") return [];
  return [{ field: m[1]!, message: message.slice(m[0].length) }];
}

// buf.validate.Violations, read by hand so that the client carries no
// validation descriptors: Violations{1: Violation}, Violation{5: FieldPath
// field, 2: rule_id, 3: message}, FieldPath{1: FieldPathElement},
// FieldPathElement{2: field_name, 6: index, 7: bool_key, 8: int_key,
// 9: uint_key, 10: string_key}.
function decodeViolations(bytes: Uint8Array): FieldViolation[] {
  const out: FieldViolation[] = [];
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no === 1 && wt === WireType.LengthDelimited) out.push(decodeViolation(r.bytes()));
    else r.skip(wt);
  }
  return out;
}

function decodeViolation(bytes: Uint8Array): FieldViolation {
  const v: FieldViolation = { field: "", message: "" };
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no === 5 && wt === WireType.LengthDelimited) v.field = decodeFieldPath(r.bytes());
    else if (no === 2 && wt === WireType.LengthDelimited) v.rule = r.string();
    else if (no === 3 && wt === WireType.LengthDelimited) v.message = r.string();
    else r.skip(wt);
  }
  return v;
}

function decodeFieldPath(bytes: Uint8Array): string {
  let path = "";
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no !== 1 || wt !== WireType.LengthDelimited) {
      r.skip(wt);
      continue;
    }
    const e = new BinaryReader(r.bytes());
    let name = "";
    let sub = "";
    while (e.pos < e.len) {
      const [n, w] = e.tag();
      if (n === 2 && w === WireType.LengthDelimited) name = e.string();
      else if ((n === 6 || n === 9) && w === WireType.Varint) sub = `[${e.uint64()}]`;
      else if (n === 8 && w === WireType.Varint) sub = `[${e.int64()}]`;
      else if (n === 7 && w === WireType.Varint) sub = `[${e.bool()}]`;
      else if (n === 10 && w === WireType.LengthDelimited) sub = `[${JSON.stringify(e.string())}]`;
      else e.skip(w);
    }
    path += (path && name ? "." : "") + name + sub;
  }
  return path;
}

export { Code };
