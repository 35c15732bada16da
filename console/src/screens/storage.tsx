// Storage: buckets (create, delete), a bucket's files (upload, preview,
// download, delete, tokens) and the project's usage.
import { useEffect, useState } from "preact/hooks";
import type { BucketJson, FileJson, UpdateBucketRequestJson } from "@cairn/gen/storage_pb.js";
import { api, bytes, cairn, when } from "../api.js";
import { ConfirmDelete, Empty, ErrorBox, Link, Loading, Modal, useAction, useLoad } from "../ui.js";

export function Storage({ project }: { project: string }) {
  const buckets = useLoad(async () => (await api.storage.listBuckets({ projectId: project, limit: 1000 })).buckets ?? [], [project]);
  const usage = useLoad(() => api.storage.getStorageUsage({ projectId: project }), [project]);
  const [id, setId] = useState("");
  const [fileSecurity, setFileSecurity] = useState(false);
  const [deleting, setDeleting] = useState<string | null>(null);
  const act = useAction();
  const u = usage.data;
  return (
    <>
      <h2>Storage</h2>
      {u ? <p id="usage">{bytes(u.usedBytes)} used{u.quotaBytes && u.quotaBytes !== "0" ? ` of ${bytes(u.quotaBytes)}` : " (no quota)"} · {u.files ?? "0"} files</p> : null}
      <form class="inline write" id="create-bucket" onSubmit={async (e) => {
        e.preventDefault();
        if (await act.run(() => api.storage.createBucket({ projectId: project, bucketId: id, name: id, fileSecurity }))) { setId(""); buckets.reload(); }
      }}>
        <input name="bucketId" placeholder="bucket id" value={id} onInput={(e) => setId(e.currentTarget.value)} />
        <label class="check"><input type="checkbox" checked={fileSecurity} onChange={(e) => setFileSecurity(e.currentTarget.checked)} /> file security</label>
        <button type="submit" class="primary" disabled={act.busy}>Create bucket</button>
        <ErrorBox error={act.error} />
      </form>
      <Loading loading={buckets.loading} />
      <ErrorBox error={buckets.error} />
      {buckets.data?.length === 0 ? <Empty>No bucket yet.</Empty> : null}
      {buckets.data && buckets.data.length > 0 ? (
        <table id="buckets">
          <thead><tr><th>Bucket</th><th>Permissions</th><th>Max file size</th><th>Extensions</th><th>Compression</th><th>Encryption</th><th /></tr></thead>
          <tbody>{buckets.data.map((b) => (
            <tr key={b.id}>
              <td><Link to={`/p/${project}/storage/${b.id}`} class="strong">{b.id}</Link>{b.enabled === false ? " (disabled)" : ""}</td>
              <td>{(b.permissions ?? []).map((p) => <span class="chip" key={p}>{p}</span>)}{b.fileSecurity ? <span class="chip">file security</span> : null}</td>
              <td>{b.maximumFileSize && b.maximumFileSize !== "0" ? bytes(b.maximumFileSize) : "default"}</td>
              <td>{(b.allowedFileExtensions ?? []).join(", ") || "any"}</td>
              <td>{(b.compression ?? "").replace("COMPRESSION_", "").toLowerCase()}</td><td>{b.encryption ? "yes" : ""}</td>
              <td><button type="button" class="danger small write" onClick={() => setDeleting(b.id ?? "")}>Delete</button></td>
            </tr>
          ))}</tbody>
        </table>
      ) : null}
      {deleting ? <ConfirmDelete what="bucket" id={deleting} onClose={() => setDeleting(null)}
        onConfirm={async () => { await api.storage.deleteBucket({ projectId: project, bucketId: deleting }); buckets.reload(); }} /> : null}
    </>
  );
}

export function BucketView({ project, bucket }: { project: string; bucket: string }) {
  const files = useLoad(async () => (await api.storage.listFiles({ projectId: project, bucketId: bucket, limit: 100, total: true })), [project, bucket]);
  const [progress, setProgress] = useState("");
  const [deleting, setDeleting] = useState<string | null>(null);
  const [tokens, setTokens] = useState<string | null>(null);
  const act = useAction();
  const [settings, setSettings] = useState(false);
  return (
    <>
      <div class="card-head">
        <h2><Link to={`/p/${project}/storage`}>Storage</Link> / {bucket}</h2>
        <button type="button" class="small" id="bucket-settings-toggle" onClick={() => setSettings(!settings)}>{settings ? "Hide settings" : "Settings"}</button>
      </div>
      {settings ? <BucketSettings project={project} bucket={bucket} /> : null}
      <form class="inline write" id="upload" onSubmit={(e) => e.preventDefault()}>
        <input type="file" name="file" multiple onChange={async (e) => {
          const input = e.currentTarget;
          const list = [...(input.files ?? [])];
          await act.run(async () => {
            for (const f of list) {
              await cairn(project).upload(bucket, f, { onProgress: (p) => setProgress(`${f.name}: ${Math.round((100 * p.loaded) / Math.max(p.total, 1))} %`) });
            }
          });
          input.value = "";
          setProgress("");
          files.reload();
        }} />
        <span class="muted">{progress}</span>
        <ErrorBox error={act.error} />
      </form>
      <Loading loading={files.loading} />
      <ErrorBox error={files.error} />
      {files.data && (files.data.files ?? []).length === 0 ? <Empty>No file yet: upload one above.</Empty> : null}
      {(files.data?.files ?? []).length ? (
        <table id="files">
          <thead><tr><th>Preview</th><th>Id</th><th>Name</th><th>Type</th><th>Size</th><th>Stored</th><th>Created</th><th /></tr></thead>
          <tbody>{(files.data?.files ?? []).map((f) => (
            <tr key={f.id} data-file={f.id}>
              <td><Preview project={project} bucket={bucket} file={f} /></td>
              <td><code>{f.id}</code></td><td>{f.name}</td><td>{f.mimeType}</td><td class="num">{bytes(f.size)}</td>
              <td class="num">{bytes(f.storedSize)}{f.encrypted ? " 🔒" : ""}</td><td class="muted">{when(f.createdAt)}</td>
              <td>
                <button type="button" class="small" onClick={() => void act.run(() => download(project, bucket, f))}>Download</button>{" "}
                <button type="button" class="small tokens" onClick={() => setTokens(f.id ?? "")}>Tokens</button>{" "}
                <button type="button" class="danger small write" onClick={() => setDeleting(f.id ?? "")}>Delete</button>
              </td>
            </tr>
          ))}</tbody>
        </table>
      ) : null}
      {files.data?.total ? <p class="muted">{files.data.total} files{files.data.totalCapped ? " or more" : ""}</p> : null}
      {tokens ? <FileTokens project={project} bucket={bucket} file={tokens} onClose={() => setTokens(null)} /> : null}
      {deleting ? <ConfirmDelete what="file" id={deleting} onClose={() => setDeleting(null)}
        onConfirm={async () => { await api.storage.deleteFile({ projectId: project, bucketId: bucket, fileId: deleting }); files.reload(); }} /> : null}
    </>
  );
}

/**
 * An image's preview, fetched with the operator key and shown from a blob:
 * URL. Only the server's rendered raster preview is shown: a project's own
 * bytes (HTML, SVG) are never made active content on the API's origin.
 */
function Preview({ project, bucket, file }: { project: string; bucket: string; file: FileJson }) {
  const [src, setSrc] = useState("");
  const image = /^image\/(png|jpeg|gif|webp)$/.test(file.mimeType ?? "");
  useEffect(() => {
    if (!image) return;
    let url = "";
    let live = true;
    cairn(project).fileBlob(bucket, file.id ?? "", { preview: { width: 160, height: 100, output: "png" } }).then((b) => {
      if (!live) return;
      url = URL.createObjectURL(new Blob([b], { type: "image/png" }));
      setSrc(url);
    }, () => {});
    return () => { live = false; if (url) URL.revokeObjectURL(url); };
  }, [project, bucket, file.id, image]);
  return src ? <img class="preview" src={src} alt={file.name} /> : <span class="muted">{image ? "…" : ""}</span>;
}

/** Saves the file's bytes as a download (never opened on this origin). */
async function download(project: string, bucket: string, f: FileJson) {
  const b = await cairn(project).fileBlob(bucket, f.id ?? "", { download: true });
  const url = URL.createObjectURL(new Blob([b], { type: "application/octet-stream" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = f.name || f.id || "file";
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * A file's tokens: each a revocable, optionally expiring grant to read the
 * file by URL. The secret is stored as a hash, so its URL is shown once,
 * right after creation.
 */
function FileTokens({ project, bucket, file, onClose }: { project: string; bucket: string; file: string; onClose: () => void }) {
  const ids = { projectId: project, bucketId: bucket, fileId: file };
  const list = useLoad(async () => (await api.storage.listFileTokens(ids)).tokens ?? [], [project, bucket, file]);
  const [expires, setExpires] = useState("");
  const [url, setUrl] = useState("");
  const act = useAction();
  return (
    <Modal title={`Tokens for ${file}`} onClose={onClose}>
      <form class="inline write" id="create-token" onSubmit={async (e) => {
        e.preventDefault();
        await act.run(async () => {
          const r = await api.storage.createFileToken({ ...ids, ...(expires ? { expiresAt: new Date(expires).toISOString() } : {}) });
          setUrl(cairn(project).fileURL(bucket, file, { token: r.secret ?? "" }));
          setExpires("");
          list.reload();
        });
      }}>
        <label>Expires <input type="datetime-local" step="1" name="expiresAt" value={expires} onInput={(e) => setExpires(e.currentTarget.value)} /></label>
        <span class="muted">{expires ? "" : "(never, until deleted)"}</span>
        <button type="submit" class="primary" disabled={act.busy}>Create token</button>
      </form>
      {url ? (
        <div class="card" id="token-url">
          <p><strong>Copy this URL now:</strong> it is shown once, and anyone holding it can read the file.</p>
          <input class="mono" readOnly value={url} onFocus={(e) => e.currentTarget.select()} />
        </div>
      ) : null}
      <ErrorBox error={act.error} />
      <ErrorBox error={list.error} />
      {list.data?.length === 0 ? <Empty>No token.</Empty> : null}
      {list.data && list.data.length > 0 ? (
        <table id="tokens">
          <thead><tr><th>Token</th><th>Created</th><th>Expires</th><th /></tr></thead>
          <tbody>{list.data.map((x) => (
            <tr key={x.id} data-token={x.id}>
              <td><code>{x.id}</code></td><td class="muted">{when(x.createdAt)}</td><td>{x.expiresAt ? when(x.expiresAt) : "never"}{x.expiresAt && new Date(x.expiresAt).getTime() <= Date.now() ? <span class="chip warn expired"> expired</span> : null}</td>
              <td><button type="button" class="danger small write" disabled={act.busy}
                onClick={() => void act.run(async () => { await api.storage.deleteFileToken({ ...ids, tokenId: x.id ?? "" }); list.reload(); })}>Delete</button></td>
            </tr>
          ))}</tbody>
        </table>
      ) : null}
    </Modal>
  );
}

const compressions = ["COMPRESSION_NONE", "COMPRESSION_GZIP", "COMPRESSION_ZSTD"] as const;
const mib = 1024 * 1024;

/**
 * A bucket's settings, as UpdateBucket takes them: name, enabled, file
 * security, the largest file (MiB; 0 is the instance's maximum), allowed
 * extensions, compression, encryption and permissions (one a line).
 */
function BucketSettings({ project, bucket }: { project: string; bucket: string }) {
  const loaded = useLoad(async () => (await api.storage.getBucket({ projectId: project, bucketId: bucket })).bucket, [project, bucket]);
  const [b, setB] = useState<BucketJson | null>(null);
  const [saved, setSaved] = useState(false);
  const act = useAction();
  useEffect(() => setB(loaded.data ?? null), [loaded.data]);
  if (!b) return <><Loading loading={loaded.loading} /><ErrorBox error={loaded.error} /></>;
  const set = (patch: Partial<BucketJson>) => { setSaved(false); setB({ ...b, ...patch }); };
  return (
    <form class="card settings" id="bucket-settings" onSubmit={async (e) => {
      e.preventDefault();
      const req: UpdateBucketRequestJson = {
        projectId: project, bucketId: bucket, name: b.name ?? "", enabled: b.enabled ?? false, fileSecurity: b.fileSecurity ?? false,
        maximumFileSize: b.maximumFileSize ?? "0", encryption: b.encryption ?? false,
        allowedFileExtensions: { values: (b.allowedFileExtensions ?? []).map((x) => x.trim()).filter(Boolean) },
        permissions: { values: (b.permissions ?? []).map((x) => x.trim()).filter(Boolean) },
        ...(b.compression ? { compression: b.compression } : {}),
      };
      let stored: BucketJson | undefined;
      if (await act.run(async () => { stored = (await api.storage.updateBucket(req)).bucket; })) {
        if (stored) setB(stored);
        setSaved(true);
      }
    }}>
      <h3>Bucket settings</h3>
      <div class="row">
        <label>Name<input name="bucketName" value={b.name ?? ""} onInput={(e) => set({ name: e.currentTarget.value })} /></label>
        <label>Largest file (MiB, 0: the instance's maximum)<input name="maximumFileSize" type="number" min="0" step="any"
          value={Number(b.maximumFileSize ?? 0) / mib} onInput={(e) => set({ maximumFileSize: String(Math.round(Number(e.currentTarget.value) * mib)) })} /></label>
        <label>Allowed extensions (comma-separated; empty: any)<input name="allowedFileExtensions" placeholder="jpg, png, pdf"
          value={(b.allowedFileExtensions ?? []).join(", ")} onInput={(e) => set({ allowedFileExtensions: e.currentTarget.value.split(",") })} /></label>
        <label>Compression<select name="compression" value={b.compression ?? "COMPRESSION_NONE"} onChange={(e) => set({ compression: e.currentTarget.value as BucketJson["compression"] })}>
          {compressions.map((c) => <option key={c} value={c}>{c.replace("COMPRESSION_", "").toLowerCase()}</option>)}</select></label>
      </div>
      <div class="row">
        <label class="check"><input type="checkbox" name="bucketEnabled" checked={!!b.enabled} onChange={(e) => set({ enabled: e.currentTarget.checked })} /> enabled</label>
        <label class="check"><input type="checkbox" name="fileSecurity" checked={!!b.fileSecurity} onChange={(e) => set({ fileSecurity: e.currentTarget.checked })} /> file security</label>
        <label class="check"><input type="checkbox" name="encryption" checked={!!b.encryption} onChange={(e) => set({ encryption: e.currentTarget.checked })} /> encryption at rest</label>
      </div>
      <label><span>Permissions, one a line (e.g. <code>read("any")</code>, <code>create("users")</code>)</span>
        <textarea name="bucketPermissions" rows={3} class="mono" value={(b.permissions ?? []).join("\n")} onInput={(e) => set({ permissions: e.currentTarget.value.split("\n") })} /></label>
      <ErrorBox error={act.error} />
      <button type="submit" class="primary write" disabled={act.busy}>Save bucket</button>
      {saved ? <span class="ok" id="bucket-saved"> Saved.</span> : null}
    </form>
  );
}
