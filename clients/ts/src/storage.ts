import type { Cairn } from "./client.js";
import type { FileJson } from "./gen/cairn/v1/storage_pb.js";
import { CairnError } from "./errors.js";
import { file, type FileInfo } from "./convert.js";

/** 5 MiB, as Appwrite's SDKs send (the server takes up to 64 MiB). */
export const chunkSize = 5 << 20;

export interface UploadOptions {
  /** The file's id; pass the same one again to resume an interrupted upload. Default: a random id. */
  fileId?: string;
  /** Default: the File's name, else the id. */
  name?: string;
  permissions?: string[];
  /** Called after each chunk the server took. */
  onProgress?: (p: { loaded: number; total: number }) => void;
  /** Times a failed chunk is retried, from the server's resume point (default 3). */
  retries?: number;
  /** Bytes per request (default 5 MiB). */
  chunkSize?: number;
  signal?: AbortSignal;
}

export interface PreviewOptions {
  width?: number;
  height?: number;
  gravity?: string;
  quality?: number;
  borderWidth?: number;
  borderColor?: string;
  borderRadius?: number;
  opacity?: number;
  rotation?: number;
  background?: string;
  output?: "jpeg" | "png" | "gif" | "webp";
}

export interface FileURLOptions {
  /** An image preview (resized, converted) instead of the bytes. */
  preview?: PreviewOptions | true;
  /** As an attachment (`download`) rather than inline (`view`). */
  download?: boolean;
  /** A file token's secret (`CreateFileToken`): lets an <img> or a link read a file that is not public. */
  token?: string;
}

function filesURL(cairn: Cairn, bucket: string): string {
  return `${cairn.url}/v1/storage/buckets/${encodeURIComponent(bucket)}/files`;
}

/** The URL of a file's bytes, view or preview; built, not fetched. */
export function fileURL(cairn: Cairn, bucket: string, fileId: string, opts: FileURLOptions = {}): string {
  const q = new URLSearchParams();
  if (cairn.project) q.set("project", cairn.project);
  if (opts.token) q.set("token", opts.token);
  let kind = opts.download ? "download" : "view";
  if (opts.preview) {
    kind = "preview";
    if (opts.preview !== true) {
      for (const [k, v] of Object.entries(opts.preview)) if (v !== undefined) q.set(k, String(v));
    }
  }
  const qs = q.toString();
  return `${filesURL(cairn, bucket)}/${encodeURIComponent(fileId)}/${kind}${qs ? "?" + qs : ""}`;
}

function randomId(): string {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Where the server's upload of fileId stands (0: not started). */
async function received(cairn: Cairn, bucket: string, fileId: string): Promise<number> {
  try {
    const res = await cairn.storage.getUpload({ projectId: cairn.projectId(), bucketId: bucket, fileId });
    return Number(res.received);
  } catch (e) {
    if (e instanceof CairnError && e.code === "not_found") return 0;
    throw e;
  }
}

/**
 * Uploads data to bucket in chunks (Content-Range), each answered 202 with
 * Cairn-Upload-Received, the last 201 with the file. A chunk that fails is
 * retried from the byte the server asks for (GetUpload, or a 412 naming it);
 * calling upload again with the same fileId resumes where the last call
 * stopped.
 */
export async function upload(cairn: Cairn, bucket: string, data: Blob, opts: UploadOptions = {}): Promise<FileInfo> {
  const size = data.size;
  const step = opts.chunkSize ?? chunkSize;
  const fileId = opts.fileId ?? randomId();
  const name = opts.name ?? ((data as { name?: unknown }).name as string | undefined) ?? fileId;
  const q = new URLSearchParams({ fileId, name });
  if (cairn.project) q.set("project", cairn.project);
  for (const p of opts.permissions ?? []) q.append("permissions", p);
  const url = filesURL(cairn, bucket) + "?" + q.toString();
  const chunked = size > step;
  let offset = chunked && opts.fileId ? await received(cairn, bucket, fileId) : 0;
  let failures = 0;
  for (;;) {
    const end = chunked ? Math.min(offset + step, size) : size;
    const headers: Record<string, string> = { ...cairn.headers(), "Content-Type": "application/octet-stream" };
    if (chunked) headers["Content-Range"] = `bytes ${offset}-${end - 1}/${size}`;
    const token = cairn.credential();
    let res: Response;
    try {
      res = await cairn.fetch(url, { method: "POST", headers, body: data.slice(offset, end), ...(opts.signal ? { signal: opts.signal } : {}) });
    } catch (e) {
      if (opts.signal?.aborted || failures >= (opts.retries ?? 3)) {
        const n = CairnError.network(e, cairn.url);
        throw new CairnError(n.code, `upload of ${fileId}: ${n.message}`, { cause: e });
      }
      await sleep(250 * 2 ** failures++);
      if (chunked) offset = await received(cairn, bucket, fileId);
      continue;
    }
    const body: unknown = await res.json().catch(() => ({}));
    if (res.status === 201 || (res.status === 200 && !chunked)) {
      opts.onProgress?.({ loaded: size, total: size });
      return file(body as FileJson);
    }
    if (res.status === 202) {
      failures = 0;
      offset = Number(res.headers.get("Cairn-Upload-Received") ?? end);
      opts.onProgress?.({ loaded: offset, total: size });
      continue;
    }
    const err = CairnError.fromHTTP(res.status, body, url);
    const resume = /resume from byte (\d+)/.exec(err.message);
    if (res.status === 412 && resume && failures++ < (opts.retries ?? 3)) {
      offset = Number(resume[1]);
      continue;
    }
    cairn.refused(err, token);
    throw err;
  }
}

/** A file's bytes (view, download or preview) fetched with the client's credential. */
export async function fileBlob(cairn: Cairn, bucket: string, fileId: string, opts: FileURLOptions & { signal?: AbortSignal } = {}): Promise<Blob> {
  const url = fileURL(cairn, bucket, fileId, opts);
  const token = cairn.credential();
  let res: Response;
  try {
    res = await cairn.fetch(url, { headers: cairn.headers(token), ...(opts.signal ? { signal: opts.signal } : {}) });
    if (res.ok) return await res.blob();
  } catch (e) {
    throw CairnError.network(e, cairn.url);
  }
  const err = CairnError.fromHTTP(res.status, await res.json().catch(() => undefined), url);
  cairn.refused(err, token);
  throw err;
}
