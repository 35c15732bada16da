// Projects: the list with a few figures each, create, delete (typing the id).
import { useEffect, useState } from "preact/hooks";
import type { ProjectJson } from "@cairn/gen/projects_pb.js";
import { api, all, bytes, may, storedKey, when } from "../api.js";
import { ConfirmDelete, Empty, ErrorBox, Link, Loading, navigate, useAction, useLoad } from "../ui.js";

export function Projects({ admin }: { admin: boolean }) {
  const list = useLoad(() => all(async (pageToken) => {
    const r = await api.projects.listProjects({ pageSize: 200, pageToken });
    return { items: r.projects ?? [], next: r.nextPageToken ?? "" };
  }), []);
  const [deleting, setDeleting] = useState<string | null>(null);
  return (
    <section class="screen">
      <h2>Projects</h2>
      {admin ? <CreateProject onCreated={(id) => navigate(`/p/${id}/keys`)} /> : null}
      {admin ? <ProjectionLag /> : null}
      <Loading loading={list.loading} />
      <ErrorBox error={list.error} />
      {list.data && list.data.length === 0 ? <Empty>{admin ? "No project yet: create one above." : "No project yet: an administrator gives you a role on one."}</Empty> : null}
      {list.data && list.data.length > 0 ? (
        <table id="projects">
          <thead><tr><th>Project</th><th>Name</th><th>Keys</th><th>Databases</th><th>Sites</th><th>Functions</th><th>Storage</th><th>Created</th><th /></tr></thead>
          <tbody>{list.data.map((p) => <ProjectRow key={p.id} p={p} onDelete={() => setDeleting(p.id ?? "")} />)}</tbody>
        </table>
      ) : null}
      {deleting ? (
        <ConfirmDelete what="project" id={deleting} onClose={() => setDeleting(null)}
          onConfirm={async () => { await api.projects.deleteProject({ projectId: deleting }); list.reload(); }} />
      ) : null}
    </section>
  );
}

/** One project and its figures, each from an existing list or usage call. */
function ProjectRow({ p, onDelete }: { p: ProjectJson; onDelete: () => void }) {
  const id = p.id ?? "";
  const figures = useLoad(async () => {
    const projectId = id;
    const count = (f: () => Promise<unknown[] | undefined>) => f().then((x) => String((x ?? []).length), () => "–");
    const [keys, dbs, sites, fns, usage] = await Promise.all([
      count(async () => (await api.keys.listKeys({ projectId, pageSize: 1000 })).keys),
      count(async () => (await api.databases.listDatabases({ projectId, limit: 1000 })).databases),
      count(async () => (await api.sites.listSites({ projectId, pageSize: 1000 })).sites),
      count(async () => (await api.functions.listFunctions({ projectId, limit: 1000 })).functions),
      api.storage.getStorageUsage({ projectId }).then(
        (u) => `${bytes(u.usedBytes)}${u.quotaBytes && u.quotaBytes !== "0" ? " of " + bytes(u.quotaBytes) : ""} · ${u.files ?? "0"} files`,
        () => "–"),
    ]);
    return { keys, dbs, sites, fns, usage };
  }, [id]);
  const f = figures.data;
  return (
    <tr data-project={id}>
      <td><Link to={`/p/${id}/keys`} class="strong">{id}</Link></td>
      <td>{p.name}</td>
      <td class="num">{f?.keys ?? "…"}</td>
      <td class="num">{f?.dbs ?? "…"}</td>
      <td class="num">{f?.sites ?? "…"}</td>
      <td class="num">{f?.fns ?? "…"}</td>
      <td>{f?.usage ?? "…"}</td>
      <td class="muted">{when(p.createdAt)}</td>
      <td class="muted role">{may(id) === "owner" ? <button type="button" class="danger small" onClick={onDelete}>Delete</button> : may(id) === "write" ? "developer" : "viewer"}</td>
    </tr>
  );
}

function CreateProject({ onCreated }: { onCreated: (id: string) => void }) {
  const [id, setId] = useState("");
  const [name, setName] = useState("");
  const act = useAction();
  return (
    <form class="inline" id="create-project" onSubmit={async (e) => {
      e.preventDefault();
      let created = "";
      if (await act.run(async () => {
        const r = await api.projects.createProject({ projectId: id, name: name || id });
        created = r.project?.id ?? id;
      })) onCreated(created);
    }}>
      <input name="projectId" placeholder="project id (a-z, 0-9, -)" value={id} onInput={(e) => setId(e.currentTarget.value)} />
      <input name="name" placeholder="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
      <button type="submit" class="primary" disabled={act.busy}>Create project</button>
      <ErrorBox error={act.error} />
    </form>
  );
}

type Lag = { stream: string; behind: number; applied: number };

/**
 * How far this node's read models are behind the log (a replay or a
 * catch-up after a restart): no Connect call says it, the operator-only
 * GET /metrics does (cairn_projection_lag_events, per stream; the projects'
 * streams summed unless per-project labels are on). Asked again every
 * second while behind; nothing is shown where /metrics is not served.
 */
function ProjectionLag() {
  const [lags, setLags] = useState<Lag[] | null>(null);
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async () => {
      const r = await fetch("/metrics", { headers: { Authorization: "Bearer " + storedKey() } }).catch(() => null);
      if (!live || !r?.ok) return;
      const byStream = new Map<string, Lag>();
      for (const m of (await r.text()).matchAll(/^cairn_projection_(lag_events|applied_seq)\{stream="([^"]*)"\} (\S+)$/gm)) {
        const l = byStream.get(m[2] ?? "") ?? { stream: m[2] ?? "", behind: 0, applied: 0 };
        if (m[1] === "lag_events") l.behind = Number(m[3]);
        else l.applied = Number(m[3]);
        byStream.set(l.stream, l);
      }
      if (!live) return;
      const all = [...byStream.values()];
      setLags(all);
      if (all.some((l) => l.behind > 0)) timer = setTimeout(load, 1000);
    };
    void load();
    return () => { live = false; clearTimeout(timer); };
  }, []);
  if (!lags?.length) return null;
  const behind = lags.filter((l) => l.behind > 0);
  return (
    <p id="projection-lag" class={behind.length ? "progress" : "muted"} title={lags.map((l) => `${l.stream}: applied ${l.applied}, ${l.behind} behind`).join("\n")}>
      Read models on this node: {behind.length ? behind.map((l) => `${l.stream} ${l.behind} events behind (at ${l.applied})`).join(", ") + " — catching up…"
        : `caught up (${lags.map((l) => `${l.stream} at ${l.applied}`).join(", ")})`}
    </p>
  );
}
