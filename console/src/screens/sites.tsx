// Sites: each site's URL, custom domains with their verification state,
// and deployments (preview links, activate — a rollback is activating an
// older one —, delete). Deploying is the CLI's: `cairn sites deploy`.
import { useState } from "preact/hooks";
import type { SiteJson } from "@cairn/gen/sites_pb.js";
import { api, bytes, when } from "../api.js";
import { ConfirmDelete, Empty, ErrorBox, Loading, useAction, useLoad } from "../ui.js";

export function Sites({ project }: { project: string }) {
  const sites = useLoad(async () => (await api.sites.listSites({ projectId: project, pageSize: 1000 })).sites ?? [], [project]);
  const [id, setId] = useState("");
  const act = useAction();
  return (
    <>
      <h2>Sites</h2>
      <p class="muted">Deploy with the CLI: <code>cairn sites deploy --project {project} --site &lt;site&gt; --activate ./dist</code>.
        Sites and previews open on their own hosts, never on this origin.</p>
      <form class="inline write" id="create-site" onSubmit={async (e) => {
        e.preventDefault();
        if (await act.run(() => api.sites.createSite({ projectId: project, siteId: id, name: id }))) { setId(""); sites.reload(); }
      }}>
        <input name="siteId" placeholder="site id (a-z, 0-9, -)" value={id} onInput={(e) => setId(e.currentTarget.value)} />
        <button type="submit" class="primary" disabled={act.busy}>Create site</button>
        <ErrorBox error={act.error} />
      </form>
      <Loading loading={sites.loading} />
      <ErrorBox error={sites.error} />
      {sites.data?.length === 0 ? <Empty>No site yet.</Empty> : null}
      {sites.data?.map((s) => <SiteCard key={s.id} project={project} site={s} reload={sites.reload} />)}
    </>
  );
}

/** Deployments newest first (their ids are ULIDs: they sort by time). */
function newestFirst<T extends { id?: string; createdAt?: string }>(ds: T[]): T[] {
  return [...ds].sort((a, b) => (b.createdAt ?? "").localeCompare(a.createdAt ?? "") || (b.id ?? "").localeCompare(a.id ?? ""));
}

function SiteCard({ project, site, reload }: { project: string; site: SiteJson; reload: () => void }) {
  const siteId = site.id ?? "";
  const deps = useLoad(async () => newestFirst((await api.sites.listDeployments({ projectId: project, siteId, pageSize: 50 })).deployments ?? []), [project, siteId, site.activeDeploymentId]);
  const [deleting, setDeleting] = useState<{ what: string; id: string } | null>(null);
  const act = useAction();
  return (
    <div class="card" data-site={siteId}>
      <div class="card-head">
        <h3>{siteId} {site.url ? <a href={site.url} target="_blank" rel="noopener noreferrer" class="muted">{site.url}</a> : null}</h3>
        <button type="button" class="danger small write" onClick={() => setDeleting({ what: "site", id: siteId })}>Delete site</button>
      </div>
      {(site.domains ?? []).length ? (
        <table class="domains">
          <thead><tr><th>Domain</th><th>State</th><th>TXT record</th><th /></tr></thead>
          <tbody>{(site.domains ?? []).map((d) => {
            const verified = d.status === "SITE_DOMAIN_STATUS_VERIFIED";
            return (
              <tr key={d.name}>
                <td>{d.name}</td>
                <td><span class={verified ? "chip ok" : "chip warn"}>{verified ? "verified " + when(d.verifiedAt) : "pending"}</span></td>
                <td class="mono">{verified ? "" : `${d.txtRecordName} TXT "${d.txtRecordValue}"`}</td>
                <td>{verified ? null : <button type="button" class="small write" onClick={() => void act.run(async () => {
                  await api.sites.verifySiteDomain({ projectId: project, siteId, domain: d.name ?? "" });
                  reload();
                })}>Verify now</button>}</td>
              </tr>
            );
          })}</tbody>
        </table>
      ) : <p class="muted">No custom domain (add them with the CLI or UpdateSite).</p>}
      <ErrorBox error={act.error ?? deps.error} />
      <Loading loading={deps.loading} />
      {deps.data?.length === 0 ? <Empty>No deployment yet.</Empty> : null}
      {deps.data && deps.data.length > 0 ? (
        <table class="deployments">
          <thead><tr><th>Deployment</th><th>Status</th><th>Files</th><th>Size</th><th>Created</th><th>Preview</th><th /></tr></thead>
          <tbody>{deps.data.map((d) => (
            <tr key={d.id}>
              <td><code>{d.id}</code> {d.active ? <span class="chip ok">active</span> : null}</td>
              <td>{(d.status ?? "").replace("DEPLOYMENT_STATUS_", "").toLowerCase()}{d.failure ? <span class="error-text"> {d.failure}</span> : null}</td>
              <td class="num">{d.fileCount}</td><td class="num">{bytes(d.totalSize)}</td><td class="muted">{when(d.createdAt)}</td>
              <td>{d.previewUrl ? <a href={d.previewUrl} target="_blank" rel="noopener noreferrer">preview</a> : null}</td>
              <td>
                {d.active ? null : <button type="button" class="small write" onClick={() => void act.run(async () => {
                  await api.sites.activateDeployment({ projectId: project, siteId, deploymentId: d.id ?? "" });
                  reload();
                  deps.reload();
                })}>{site.activeDeploymentId && (d.createdAt ?? "") < (deps.data?.find((x) => x.active)?.createdAt ?? "") ? "Roll back to" : "Activate"}</button>}{" "}
                <button type="button" class="danger small write" onClick={() => setDeleting({ what: "deployment", id: d.id ?? "" })}>Delete</button>
              </td>
            </tr>
          ))}</tbody>
        </table>
      ) : null}
      {deleting ? <ConfirmDelete what={deleting.what} id={deleting.id} onClose={() => setDeleting(null)} onConfirm={async () => {
        if (deleting.what === "site") await api.sites.deleteSite({ projectId: project, siteId });
        else await api.sites.deleteDeployment({ projectId: project, siteId, deploymentId: deleting.id });
        reload();
        deps.reload();
      }} /> : null}
    </div>
  );
}
