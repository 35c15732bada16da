// Storage: buckets (create, delete), a bucket's files (upload, preview,
// download, delete) and the project's usage.
import { useEffect, useState } from "preact/hooks";
import type { FileJson } from "@cairn/gen/storage_pb.js";
import { api, bytes, cairn, when } from "../api.js";
import { ConfirmDelete, Empty, ErrorBox, Link, Loading, useAction, useLoad } from "../ui.js";

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
  const act = useAction();
  return (
    <>
      <h2><Link to={`/p/${project}/storage`}>Storage</Link> / {bucket}</h2>
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
                <button type="button" class="danger small write" onClick={() => setDeleting(f.id ?? "")}>Delete</button>
              </td>
            </tr>
          ))}</tbody>
        </table>
      ) : null}
      {files.data?.total ? <p class="muted">{files.data.total} files{files.data.totalCapped ? " or more" : ""}</p> : null}
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
