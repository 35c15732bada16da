// Sites: each site's URL, custom domains with their verification state,
// and deployments (preview links, activate — a rollback is activating an
// older one —, delete). Deploying is the CLI's: `cairn sites deploy`.
import { useState } from "preact/hooks";
import type { SiteJson } from "@cairn/gen/sites_pb.js";

type SiteSettingsJson = NonNullable<SiteJson["settings"]>;
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
      <details class="site-settings-toggle">
        <summary>Settings</summary>
        <SiteSettingsForm project={project} site={site} reload={reload} />
      </details>
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
      ) : <p class="muted">No custom domain (add them in Settings).</p>}
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

const slashes = ["TRAILING_SLASH_UNSPECIFIED", "TRAILING_SLASH_ADD", "TRAILING_SLASH_REMOVE"] as const;

/** Header rules as lines: `pattern Name: value`. */
const headersText = (s: SiteSettingsJson) => (s.headers ?? []).map((h) => `${h.pattern} ${h.name}: ${h.value}`).join("\n");
function parseHeaders(t: string): SiteSettingsJson["headers"] {
  return t.split("\n").map((l) => l.trim()).filter(Boolean).map((l) => {
    const m = /^(\S+)\s+([^:\s]+):\s*(.*)$/.exec(l);
    if (!m) throw new Error(`header rule "${l}": want "pattern Name: value", e.g. "/* X-Frame-Options: DENY"`);
    return { pattern: m[1], name: m[2], value: m[3] };
  });
}
/** Redirects as lines: `from to [status]`. */
const redirectsText = (s: SiteSettingsJson) => (s.redirects ?? []).map((r) => `${r.from} ${r.to}${r.status ? " " + r.status : ""}`).join("\n");
function parseRedirects(t: string): SiteSettingsJson["redirects"] {
  return t.split("\n").map((l) => l.trim()).filter(Boolean).map((l) => {
    const [from, to, status, ...rest] = l.split(/\s+/);
    if (!to || rest.length || (status && !/^\d{3}$/.test(status))) throw new Error(`redirect "${l}": want "from to [301|302|307|308]"`);
    return { from, to, ...(status ? { status: Number(status) } : {}) };
  });
}

/**
 * A site's settings, as UpdateSite takes them (set replaces them whole):
 * name, single-page fallback, not-found page, trailing slash, header rules,
 * redirects and custom domains (each then shown with its TXT record).
 */
function SiteSettingsForm({ project, site, reload }: { project: string; site: SiteJson; reload: () => void }) {
  const s0 = site.settings ?? {};
  const [f, setF] = useState({ name: site.name ?? "", spa: s0.spaFallback ?? false, notFound: s0.notFoundPage ?? "", slash: s0.trailingSlash ?? "TRAILING_SLASH_UNSPECIFIED",
    headers: headersText(s0), redirects: redirectsText(s0), domains: (s0.domains ?? []).join("\n") });
  const [saved, setSaved] = useState(false);
  const act = useAction();
  const set = (patch: Partial<typeof f>) => { setSaved(false); setF({ ...f, ...patch }); };
  return (
    <form class="settings write site-settings" onSubmit={async (e) => {
      e.preventDefault();
      if (await act.run(async () => {
        const settings: SiteSettingsJson = { spaFallback: f.spa, notFoundPage: f.notFound.trim(), trailingSlash: f.slash as SiteSettingsJson["trailingSlash"],
          headers: parseHeaders(f.headers), redirects: parseRedirects(f.redirects), domains: f.domains.split("\n").map((x) => x.trim()).filter(Boolean) };
        await api.sites.updateSite({ projectId: project, siteId: site.id ?? "", name: f.name, settings });
      })) {
        setSaved(true);
        reload();
      }
    }}>
      <div class="row">
        <label>Name<input name="siteName" value={f.name} onInput={(e) => set({ name: e.currentTarget.value })} /></label>
        <label>Not-found page<input name="notFoundPage" placeholder="404.html" value={f.notFound} onInput={(e) => set({ notFound: e.currentTarget.value })} /></label>
        <label>Trailing slash<select name="trailingSlash" value={f.slash} onChange={(e) => set({ slash: e.currentTarget.value as typeof f.slash })}>
          {slashes.map((x) => <option key={x} value={x}>{x === "TRAILING_SLASH_UNSPECIFIED" ? "either" : x.replace("TRAILING_SLASH_", "").toLowerCase()}</option>)}</select></label>
        <label class="check"><input type="checkbox" name="spaFallback" checked={f.spa} onChange={(e) => set({ spa: e.currentTarget.checked })} /> single-page app (index.html for unknown paths)</label>
      </div>
      <label><span>Headers, one rule a line: <code>pattern Name: value</code></span>
        <textarea name="siteHeaders" rows={2} class="mono" placeholder="/assets/* Cache-Control: max-age=31536000" value={f.headers} onInput={(e) => set({ headers: e.currentTarget.value })} /></label>
      <label><span>Redirects, one a line: <code>from to [status]</code></span>
        <textarea name="siteRedirects" rows={2} class="mono" placeholder="/old /new 301" value={f.redirects} onInput={(e) => set({ redirects: e.currentTarget.value })} /></label>
      <label>Custom domains, one a line
        <textarea name="siteDomains" rows={2} class="mono" placeholder="www.example.com" value={f.domains} onInput={(e) => set({ domains: e.currentTarget.value })} /></label>
      <ErrorBox error={act.error} />
      <button type="submit" class="primary" disabled={act.busy}>Save site</button>
      {saved && !act.error ? <span class="ok site-saved"> Saved.</span> : null}
    </form>
  );
}
