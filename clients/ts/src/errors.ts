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

/** The codes in Connect's numbering (index + 1), as the connect entry point needs them. */
export const codeNames: ErrorCode[] = [
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
  /** The HTTP status of the answer, when there was one. */
  readonly status: number | undefined;

  constructor(code: ErrorCode, message: string, opts: { violations?: FieldViolation[]; status?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.violations = opts.violations ?? [];
    this.field = this.violations[0]?.field;
    this.status = opts.status;
  }

  /** Anything thrown by a call, as a CairnError (a network failure is `unavailable`). */
  static from(err: unknown): CairnError {
    if (err instanceof CairnError) return err;
    const aborted = (err as { name?: unknown } | null)?.name === "AbortError";
    return new CairnError(aborted ? "canceled" : "unavailable", String(err), { cause: err });
  }

  /**
   * What `fetch` threw for a call to the API at url: `canceled` when
   * aborted, `deadline_exceeded` on a timeout signal, else `unavailable`
   * with a message saying the server could not be reached (connection
   * refused, DNS, or, in a browser, CORS refusing this page's origin: the
   * browser tells a page nothing more than "Failed to fetch").
   */
  static network(err: unknown, url: string): CairnError {
    if (err instanceof CairnError) return err;
    const e = err as { name?: unknown; message?: unknown; cause?: { message?: unknown; code?: unknown } } | null;
    if (e?.name === "AbortError") return new CairnError("canceled", `the call to ${url} was canceled`, { cause: err });
    if (e?.name === "TimeoutError") return new CairnError("deadline_exceeded", `the call to ${url} timed out`, { cause: err });
    // Node's fetch: TypeError("fetch failed") with the socket's error as the cause.
    const why = String(e?.cause?.message ?? e?.cause?.code ?? e?.message ?? err);
    const page = (globalThis as { location?: { origin?: string } }).location?.origin;
    let api = "";
    try {
      api = new URL(url).origin;
    } catch {
      // A relative url: the page's own origin.
    }
    const cors = page && api && api !== page
      ? `, and does the project list this page's origin ${page} in its allowed_origins (web platforms; the browser's console says whether CORS refused it)`
      : "";
    return new CairnError("unavailable", `could not reach the Cairn server at ${url} (${why}): is it running and the client's url right${cors}?`, { cause: err });
  }

  /**
   * The error of an answer that is not 2xx: Connect's JSON error
   * `{code, message, details}` (the storage routes answer the same shape),
   * else a code from the HTTP status.
   */
  static fromHTTP(status: number, body: unknown, url?: string): CairnError {
    const b = (typeof body === "object" && body !== null ? body : {}) as { code?: unknown; message?: unknown; details?: unknown };
    const code = typeof b.code === "string" && (codeNames as string[]).includes(b.code) ? (b.code as ErrorCode) : httpCode(status);
    const message = typeof b.message === "string" ? b.message
      : url && (status === 404 || status === 405) ? `HTTP ${status} from ${url}, not an answer of Cairn's API: is the client's url right (a Cairn site's API is under /_cairn)?`
      : `HTTP ${status}${url ? " from " + url : ""}`;
    const details = (Array.isArray(b.details) ? b.details : []).map((d: { type?: unknown; value?: unknown }) => ({
      type: String(d?.type ?? ""),
      value: typeof d?.value === "string" ? base64(d.value) : new Uint8Array(),
    }));
    return new CairnError(code, message, { violations: violationsOf(details, message), status });
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
    case 502: case 503: case 504: return "unavailable";
    default: return status >= 500 ? "internal" : "unknown";
  }
}

function base64(s: string): Uint8Array {
  try {
    return Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  } catch {
    return new Uint8Array();
  }
}

/** The violations an error names: protovalidate's detail, else the message's `field: …` prefix. */
export function violationsOf(details: { type: string; value: Uint8Array }[], message: string): FieldViolation[] {
  for (const d of details) {
    if (d.type === "buf.validate.Violations") {
      try {
        const v = decodeViolations(d.value);
        if (v.length > 0) return v;
      } catch {
        // A detail we cannot read: fall back to the message.
      }
    }
  }
  return fieldOfMessage(message);
}

// The server's own field errors read "<field>: <message>"; the field is a
// proto path (letters, digits, _, ., [ ], quotes for map keys).
const fieldPrefix = /^([A-Za-z_][\w.]*(?:\[[^\]]*\][\w.]*)*): /;

function fieldOfMessage(message: string): FieldViolation[] {
  const m = fieldPrefix.exec(message);
  if (!m || m[1] === "validation error") return [];
  return [{ field: m[1]!, message: message.slice(m[0].length) }];
}

// The protobuf wire format, as much as reading buf.validate.Violations
// takes: the client ships no protobuf runtime and no descriptors.
// Violations{1: Violation}, Violation{5: FieldPath field, 2: rule_id,
// 3: message}, FieldPath{1: FieldPathElement}, FieldPathElement{2:
// field_name, 6: index, 7: bool_key, 8: int_key, 9: uint_key, 10: string_key}.

type Field = [no: number, value: number | Uint8Array];

function fields(b: Uint8Array): Field[] {
  const out: Field[] = [];
  let i = 0;
  const varint = (): number => {
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      if (i >= b.length) throw new RangeError("truncated varint");
      const x = b[i++]!;
      v += (x & 0x7f) * 2 ** shift;
      if (x < 0x80) return v;
    }
  };
  while (i < b.length) {
    const tag = varint();
    const wt = tag % 8;
    const no = Math.floor(tag / 8);
    if (wt === 0) out.push([no, varint()]);
    else if (wt === 2) {
      const n = varint();
      if (i + n > b.length) throw new RangeError("truncated field");
      out.push([no, b.subarray(i, (i += n))]);
    } else if (wt === 1) i += 8;
    else if (wt === 5) i += 4;
    else throw new RangeError("unsupported wire type " + wt);
  }
  return out;
}

const utf8 = (v: number | Uint8Array) => (typeof v === "number" ? String(v) : new TextDecoder().decode(v));
const bytes = (v: number | Uint8Array) => (typeof v === "number" ? new Uint8Array() : v);

function decodeViolations(b: Uint8Array): FieldViolation[] {
  return fields(b).filter(([no]) => no === 1).map(([, v]) => decodeViolation(bytes(v)));
}

function decodeViolation(b: Uint8Array): FieldViolation {
  const v: FieldViolation = { field: "", message: "" };
  for (const [no, x] of fields(b)) {
    if (no === 5) v.field = decodeFieldPath(bytes(x));
    else if (no === 2) v.rule = utf8(x);
    else if (no === 3) v.message = utf8(x);
  }
  return v;
}

function decodeFieldPath(b: Uint8Array): string {
  let path = "";
  for (const [no, el] of fields(b)) {
    if (no !== 1) continue;
    let name = "";
    let sub = "";
    for (const [n, x] of fields(bytes(el))) {
      if (n === 2) name = utf8(x);
      else if (n === 6 || n === 9) sub = `[${x}]`;
      // int_key: a varint of a two's-complement int64 (negative keys are rare).
      else if (n === 8) sub = `[${typeof x === "number" && x >= 2 ** 63 ? x - 2 ** 64 : x}]`;
      else if (n === 7) sub = `[${x === 1}]`;
      else if (n === 10) sub = `[${JSON.stringify(utf8(x))}]`;
    }
    path += (path && name ? "." : "") + name + sub;
  }
  return path;
}
