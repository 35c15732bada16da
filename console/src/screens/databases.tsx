// Databases: databases and their collections; a collection's attributes,
// indexes, permissions and a grid of its documents (create, edit, delete as
// JSON; filters; the query's explain).
import { useEffect, useState } from "preact/hooks";
import type { JsonObject, JsonValue } from "../api.js";
import type { AttributeJson, CollectionJson, DocumentJson, ExplainJson, IndexJson, ListDocumentsRequestJson } from "@cairn/gen/databases_pb.js";
import { api, may, when } from "../api.js";
import { ConfirmDelete, Empty, ErrorBox, Link, Loading, Modal, useAction, useLoad } from "../ui.js";
import { emptyQuery, filtersOf, ordersOf, QueryBuilder, QueryCode, typescriptOf, type Query } from "./query.js";

export function Databases({ project }: { project: string }) {
  const dbs = useLoad(async () => (await api.databases.listDatabases({ projectId: project, limit: 1000 })).databases ?? [], [project]);
  const [id, setId] = useState("");
  const [deleting, setDeleting] = useState<string | null>(null);
  const act = useAction();
  return (
    <>
      <h2>Databases</h2>
      <form class="inline write" id="create-database" onSubmit={async (e) => {
        e.preventDefault();
        if (await act.run(() => api.databases.createDatabase({ projectId: project, databaseId: id, name: id }))) { setId(""); dbs.reload(); }
      }}>
        <input name="databaseId" placeholder="database id" value={id} onInput={(e) => setId(e.currentTarget.value)} />
        <button type="submit" class="primary" disabled={act.busy}>Create database</button>
        <ErrorBox error={act.error} />
      </form>
      <Loading loading={dbs.loading} />
      <ErrorBox error={dbs.error} />
      {dbs.data?.length === 0 ? <Empty>No database yet.</Empty> : null}
      {dbs.data?.map((d) => (
        <div class="card" key={d.id} data-database={d.id}>
          <div class="card-head">
            <h3>{d.id} <span class="muted">{d.name !== d.id ? d.name : ""}{d.enabled === false ? " (disabled)" : ""}</span></h3>
            <button type="button" class="danger small write" onClick={() => setDeleting(d.id ?? "")}>Delete</button>
          </div>
          <Collections project={project} db={d.id ?? ""} />
        </div>
      ))}
      {deleting ? <ConfirmDelete what="database" id={deleting} onClose={() => setDeleting(null)}
        onConfirm={async () => { await api.databases.deleteDatabase({ projectId: project, databaseId: deleting }); dbs.reload(); }} /> : null}
    </>
  );
}

function Collections({ project, db }: { project: string; db: string }) {
  const colls = useLoad(async () => (await api.databases.listCollections({ projectId: project, databaseId: db, limit: 1000 })).collections ?? [], [project, db]);
  const [id, setId] = useState("");
  const [docSecurity, setDocSecurity] = useState(false);
  const act = useAction();
  return (
    <>
      <ErrorBox error={colls.error} />
      {colls.data && colls.data.length > 0 ? (
        <table class="collections">
          <thead><tr><th>Collection</th><th>Attributes</th><th>Indexes</th><th>Permissions</th><th>Created</th></tr></thead>
          <tbody>{colls.data.map((c) => (
            <tr key={c.id}>
              <td><Link to={`/p/${project}/databases/${db}/${c.id}`} class="strong">{c.id}</Link></td>
              <td class="num">{c.attributes?.length ?? 0}</td><td class="num">{c.indexes?.length ?? 0}</td>
              <td>{(c.permissions ?? []).map((p) => <span class="chip" key={p}>{p}</span>)}{c.documentSecurity ? <span class="chip">document security</span> : null}</td>
              <td class="muted">{when(c.createdAt)}</td>
            </tr>
          ))}</tbody>
        </table>
      ) : colls.data ? <Empty>No collection yet.</Empty> : null}
      <form class="inline create-collection write" onSubmit={async (e) => {
        e.preventDefault();
        if (await act.run(() => api.databases.createCollection({ projectId: project, databaseId: db, collectionId: id, name: id, documentSecurity: docSecurity }))) {
          setId("");
          colls.reload();
        }
      }}>
        <input name="collectionId" placeholder="new collection id" value={id} onInput={(e) => setId(e.currentTarget.value)} />
        <label class="check"><input type="checkbox" checked={docSecurity} onChange={(e) => setDocSecurity(e.currentTarget.checked)} /> document security</label>
        <button type="submit" disabled={act.busy}>Create collection</button>
        <ErrorBox error={act.error} />
      </form>
    </>
  );
}

const attributeTypes = ["string", "integer", "float", "boolean", "datetime", "email", "url", "ip", "enum"];
const short = (t: string | undefined, prefix: string) => (t ?? "").replace(prefix, "").toLowerCase();

export function CollectionView({ project, db, coll }: { project: string; db: string; coll: string }) {
  const ids = { projectId: project, databaseId: db, collectionId: coll };
  const c = useLoad(async () => (await api.databases.getCollection(ids)).collection, [project, db, coll]);
  const [tab, setTab] = useState<"documents" | "attributes" | "indexes" | "permissions">("documents");
  const [deleting, setDeleting] = useState(false);
  const attrs = c.data?.attributes ?? [];
  // Attributes and indexes are built in the background: while one is
  // processing, the collection is asked again until each is available or failed.
  const building = [...attrs, ...(c.data?.indexes ?? [])].filter((x) => x.status === "processing").map((x) => x.key ?? "");
  useEffect(() => {
    if (!building.length) return;
    const t = setTimeout(c.reload, 500);
    return () => clearTimeout(t);
  }, [c.data]);
  return (
    <>
      <div class="card-head">
        <h2><Link to={`/p/${project}/databases`}>{db}</Link> / <span id="collection-id">{coll}</span></h2>
        <button type="button" class="danger small write" onClick={() => setDeleting(true)}>Delete collection</button>
      </div>
      {/* The tabs come first: lines that come and go (loading, building)
          below them never move them under a click. */}
      <nav class="subtabs">
        {(["documents", "attributes", "indexes", "permissions"] as const).map((t) => (
          <button type="button" key={t} id={"subtab-" + t} class={tab === t ? "tab active" : "tab"} onClick={() => setTab(t)}>{t}</button>
        ))}
      </nav>
      <Loading loading={c.loading && !c.data} />
      <ErrorBox error={c.error} />
      {building.length ? <p class="progress" id="building">Building {building.join(", ")}… (refreshing until done)</p> : null}
      {tab === "attributes" ? <Attributes ids={ids} attrs={attrs} reload={c.reload} /> : null}
      {tab === "indexes" ? <Indexes ids={ids} attrs={attrs} indexes={c.data?.indexes ?? []} reload={c.reload} /> : null}
      {tab === "documents" && c.data ? <Documents ids={ids} attrs={attrs} /> : null}
      {tab === "permissions" && c.data ? <Permissions ids={ids} coll={c.data} reload={c.reload} /> : null}
      {deleting ? <ConfirmDelete what="collection" id={coll} onClose={() => setDeleting(false)}
        onConfirm={async () => { await api.databases.deleteCollection(ids); history.back(); }} /> : null}
    </>
  );
}

function StatusChip({ status }: { status: string | undefined }) {
  return <span class={status === "failed" ? "chip warn status" : status === "processing" ? "chip busy status" : "chip status"}>{status}</span>;
}

type Ids = { projectId: string; databaseId: string; collectionId: string };

function Attributes({ ids, attrs, reload }: { ids: Ids; attrs: AttributeJson[]; reload: () => void }) {
  const [key, setKey] = useState("");
  const [type, setType] = useState("string");
  const [size, setSize] = useState("255");
  const [required, setRequired] = useState(false);
  const [array, setArray] = useState(false);
  const [elements, setElements] = useState("");
  const act = useAction();
  return (
    <>
      {attrs.length ? (
        <table id="attributes">
          <thead><tr><th>Key</th><th>Type</th><th>Size</th><th>Required</th><th>Array</th><th>Default</th><th>Status</th><th /></tr></thead>
          <tbody>{attrs.map((a) => (
            <tr key={a.key}>
              <td><code>{a.key}</code></td><td>{short(a.type, "ATTRIBUTE_TYPE_")}{a.elements?.length ? ` (${a.elements.join(", ")})` : ""}</td>
              <td class="num">{a.size && a.size !== "0" ? a.size : ""}</td><td>{a.required ? "yes" : ""}</td><td>{a.array ? "yes" : ""}</td>
              <td><code>{a.default === undefined ? "" : JSON.stringify(a.default)}</code></td>
              <td><StatusChip status={a.status} />{a.error ? <span class="error-text"> {a.error}</span> : null}</td>
              <td><button type="button" class="danger small write" onClick={() => void act.run(async () => { await api.databases.deleteAttribute({ ...ids, key: a.key ?? "" }); reload(); })}>Delete</button></td>
            </tr>
          ))}</tbody>
        </table>
      ) : <Empty>No attribute: documents may hold any field.</Empty>}
      <form class="card write" id="create-attribute" onSubmit={async (e) => {
        e.preventDefault();
        const attribute: AttributeJson = { key, type: `ATTRIBUTE_TYPE_${type.toUpperCase()}` as AttributeJson["type"], required, array };
        if (type === "string") attribute.size = size;
        if (type === "enum") attribute.elements = elements.split(",").map((s) => s.trim()).filter(Boolean);
        if (await act.run(() => api.databases.createAttribute({ ...ids, attribute }))) { setKey(""); reload(); }
      }}>
        <h3>New attribute</h3>
        <div class="row">
          <label>Key <input name="attributeKey" value={key} onInput={(e) => setKey(e.currentTarget.value)} /></label>
          <label>Type <select name="attributeType" value={type} onChange={(e) => setType(e.currentTarget.value)}>
            {attributeTypes.map((t) => <option key={t} value={t}>{t}</option>)}</select></label>
          {type === "string" ? <label>Size <input name="attributeSize" type="number" min="1" value={size} onInput={(e) => setSize(e.currentTarget.value)} /></label> : null}
          {type === "enum" ? <label>Elements <input placeholder="a, b, c" value={elements} onInput={(e) => setElements(e.currentTarget.value)} /></label> : null}
          <label class="check"><input type="checkbox" checked={required} onChange={(e) => setRequired(e.currentTarget.checked)} /> required</label>
          <label class="check"><input type="checkbox" checked={array} onChange={(e) => setArray(e.currentTarget.checked)} /> array</label>
        </div>
        <ErrorBox error={act.error} />
        <button type="submit" class="primary" disabled={act.busy}>Create attribute</button>
      </form>
    </>
  );
}

function Indexes({ ids, attrs, indexes, reload }: { ids: Ids; attrs: AttributeJson[]; indexes: IndexJson[]; reload: () => void }) {
  const [key, setKey] = useState("");
  const [type, setType] = useState("key");
  const [on, setOn] = useState("");
  const act = useAction();
  return (
    <>
      {indexes.length ? (
        <table id="indexes">
          <thead><tr><th>Key</th><th>Type</th><th>Attributes</th><th>Status</th><th /></tr></thead>
          <tbody>{indexes.map((x) => (
            <tr key={x.key} data-index={x.key}>
              <td><code>{x.key}</code></td><td>{short(x.type, "INDEX_TYPE_")}</td>
              <td>{(x.attributes ?? []).map((a, i) => a + (x.desc?.[i] ? " ↓" : "")).join(", ")}</td>
              <td><StatusChip status={x.status} />{x.error ? <span class="error-text"> {x.error}</span> : null}</td>
              <td><button type="button" class="danger small write" onClick={() => void act.run(async () => { await api.databases.deleteIndex({ ...ids, key: x.key ?? "" }); reload(); })}>Delete</button></td>
            </tr>
          ))}</tbody>
        </table>
      ) : <Empty>No index.</Empty>}
      <form class="card write" id="create-index" onSubmit={async (e) => {
        e.preventDefault();
        const attributes = on.split(",").map((s) => s.trim()).filter(Boolean);
        const index: IndexJson = { key, type: `INDEX_TYPE_${type.toUpperCase()}` as IndexJson["type"],
          attributes: attributes.map((a) => a.replace(/^-/, "")), desc: attributes.map((a) => a.startsWith("-")) };
        if (await act.run(() => api.databases.createIndex({ ...ids, index }))) { setKey(""); reload(); }
      }}>
        <h3>New index</h3>
        <div class="row">
          <label>Key <input name="indexKey" value={key} onInput={(e) => setKey(e.currentTarget.value)} /></label>
          <label>Type <select name="indexType" value={type} onChange={(e) => setType(e.currentTarget.value)}>
            {["key", "unique", "fulltext"].map((t) => <option key={t} value={t}>{t}</option>)}</select></label>
          <label>Attributes <input name="indexAttributes" placeholder={attrs.map((a) => a.key).slice(0, 2).join(", ") || "title, -$createdAt"} value={on}
            onInput={(e) => setOn(e.currentTarget.value)} /></label>
        </div>
        <p class="muted">Comma-separated; a leading <code>-</code> sorts that attribute descending.</p>
        <ErrorBox error={act.error} />
        <button type="submit" class="primary" disabled={act.busy}>Create index</button>
      </form>
    </>
  );
}

function Documents({ ids, attrs }: { ids: Ids; attrs: AttributeJson[] }) {
  const [draft, setDraft] = useState<Query>(emptyQuery);
  const [applied, setApplied] = useState<Query>(emptyQuery);
  const [page, setPage] = useState(0);
  const pageSize = 25;
  const filters = filtersOf(applied, attrs);
  const query: ListDocumentsRequestJson = { ...ids, filters, limit: pageSize, offset: page * pageSize, orders: ordersOf(applied) };
  // Each run (even of the same query) loads again; the grid says which run
  // its rows answer (data-loaded), so what is shown is never a stale page.
  const [run, setRun] = useState(0);
  const loaded = useLoad(async () => {
    try {
      return { run, r: await api.databases.listDocuments({ ...query, total: true }), error: null as unknown };
    } catch (error) {
      return { run, r: undefined, error };
    }
  }, [ids.projectId, ids.databaseId, ids.collectionId, JSON.stringify(query), run]);
  const docs = { data: loaded.data?.r, error: loaded.error ?? loaded.data?.error, loading: loaded.loading, reload: loaded.reload };
  const [editing, setEditing] = useState<DocumentJson | "new" | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);
  const columns = attrs.map((a) => a.key ?? "");
  const rows = docs.data?.documents ?? [];
  // Fields the documents hold that no attribute declares are shown too.
  for (const d of rows) for (const k of Object.keys(d.data ?? {})) if (!columns.includes(k) && columns.length < 12) columns.push(k);
  const total = Number(docs.data?.total ?? rows.length);
  // The code shown is the draft's: what Run would send.
  const draftQuery: ListDocumentsRequestJson = { ...ids, filters: filtersOf(draft, attrs), orders: ordersOf(draft), limit: pageSize };
  return (
    <>
      <form class="filters" id="filter" onSubmit={(e) => {
        e.preventDefault();
        setPage(0);
        setApplied(structuredClone(draft));
        setRun(run + 1);
      }}>
        <QueryBuilder query={draft} attributes={columns} onChange={setDraft} />
        <div class="inline">
          <button type="submit" class="primary" id="run-query">Run query</button>
          {filters.length ? <button type="button" class="link" id="clear-query" onClick={() => { const q = emptyQuery(); setDraft(q); setApplied(q); setPage(0); }}>clear</button> : null}
          <span class="spacer" />
          <button type="button" class="primary write" id="new-document" onClick={() => setEditing("new")}>New document</button>
        </div>
        {/* The query's refusal right under it; data-loaded names the run the rows answer. */}
        <div id="grid-state" data-run={run} data-loaded={docs.loading ? "" : String(loaded.data?.run ?? "")} />
        <ErrorBox error={docs.error} />
        <QueryCode ts={typescriptOf(draft, attrs, ids.databaseId, ids.collectionId, pageSize, 0)} json={JSON.stringify(draftQuery, null, 2)} />
      </form>
      <Loading loading={docs.loading} />
      {docs.data && rows.length === 0 ? <Empty>No document{filters.length ? " matches" : " yet"}.</Empty> : null}
      {rows.length ? (
        <div class="grid-wrap">
          <table id="documents" class="grid">
            <thead><tr><th>$id</th>{columns.map((k) => <th key={k}>{k}</th>)}<th>version</th><th>updated</th><th /></tr></thead>
            <tbody>{rows.map((d) => (
              <tr key={d.id} data-document={d.id}>
                <td><button type="button" class="link mono" onClick={() => setEditing(d)}>{d.id}</button></td>
                {columns.map((k) => <td key={k} class="cell">{cell((d.data ?? {})[k])}</td>)}
                <td class="num">{d.version}</td><td class="muted">{when(d.updatedAt)}</td>
                <td><button type="button" class="danger small write" onClick={() => setDeleting(d.id ?? "")}>Delete</button></td>
              </tr>
            ))}</tbody>
          </table>
        </div>
      ) : null}
      {docs.data ? (
        <p class="pager muted">
          {total} document{total === 1 ? "" : "s"}{docs.data.totalCapped ? " or more" : ""}
          {page > 0 ? <button type="button" class="link" onClick={() => setPage(page - 1)}>← previous</button> : null}
          {(page + 1) * pageSize < total ? <button type="button" class="link" onClick={() => setPage(page + 1)}>next →</button> : null}
        </p>
      ) : null}
      <ExplainQuery key={JSON.stringify(query)} query={query} />
      {editing ? <DocumentEditor ids={ids} attrs={attrs} doc={editing === "new" ? null : editing} onClose={() => setEditing(null)} onSaved={() => { setEditing(null); docs.reload(); }} /> : null}
      {deleting ? <ConfirmDelete what="document" id={deleting} onClose={() => setDeleting(null)}
        onConfirm={async () => { await api.databases.deleteDocument({ ...ids, documentId: deleting }); docs.reload(); }} /> : null}
    </>
  );
}

function cell(v: JsonValue | undefined): string {
  if (v === undefined || v === null) return "";
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.length > 80 ? s.slice(0, 77) + "…" : s;
}

function DocumentEditor({ ids, attrs, doc, onClose, onSaved }: { ids: Ids; attrs: AttributeJson[]; doc: DocumentJson | null; onClose: () => void; onSaved: () => void }) {
  const skeleton: JsonObject = {};
  for (const a of attrs) skeleton[a.key ?? ""] = a.default ?? (a.array ? [] : a.type === "ATTRIBUTE_TYPE_BOOLEAN" ? false : a.type === "ATTRIBUTE_TYPE_INTEGER" || a.type === "ATTRIBUTE_TYPE_FLOAT" ? 0 : "");
  const [id, setId] = useState("");
  const [text, setText] = useState(JSON.stringify(doc ? doc.data ?? {} : skeleton, null, 2));
  const [perms, setPerms] = useState((doc?.permissions ?? []).join("\n"));
  const act = useAction();
  return (
    <Modal title={doc ? `Document ${doc.id}` : "New document"} onClose={onClose}>
      <form id="document-editor" onSubmit={async (e) => {
        e.preventDefault();
        await act.run(async () => {
          let data: JsonObject;
          try {
            data = JSON.parse(text) as JsonObject;
          } catch (err) {
            throw new Error("The data is not JSON: " + String(err));
          }
          const permissions = perms.split("\n").map((s) => s.trim()).filter(Boolean);
          if (doc) {
            await api.databases.updateDocument({ ...ids, documentId: doc.id ?? "", data, permissions: { values: permissions }, expectedVersion: doc.version ?? "0" });
          } else {
            await api.databases.createDocument({ ...ids, document: { documentId: id || "unique()", data, ...(permissions.length ? { permissions: { values: permissions } } : {}) } });
          }
          onSaved();
        });
      }}>
        {doc ? <p class="muted">version {doc.version} · created {when(doc.createdAt)} · updated {when(doc.updatedAt)}</p>
          : <label>Document id <input name="documentId" placeholder="unique() — leave empty for a generated id" value={id} onInput={(e) => setId(e.currentTarget.value)} /></label>}
        <label>Data (JSON)<textarea name="data" rows={12} class="mono" value={text} onInput={(e) => setText(e.currentTarget.value)} /></label>
        <label>Permissions (one a line, e.g. <code>read("any")</code>)<textarea name="permissions" rows={3} class="mono" value={perms} onInput={(e) => setPerms(e.currentTarget.value)} /></label>
        <ErrorBox error={act.error} />
        <div class="actions">
          <button type="button" onClick={onClose}>Cancel</button>
          <button type="submit" class="primary write" id="save-document" disabled={act.busy}>{doc ? "Save" : "Create"}</button>
        </div>
      </form>
    </Modal>
  );
}

/**
 * How the grid's current query runs: the same ListDocuments asked again
 * with explain (and no count), on demand, so the grid itself pays nothing.
 */
function ExplainQuery({ query }: { query: ListDocumentsRequestJson }) {
  const [x, setX] = useState<ExplainJson | null>(null);
  const act = useAction();
  return (
    <div class="explain">
      <button type="button" class="small" id="explain-query" disabled={act.busy} onClick={() => void act.run(async () => {
        setX((await api.databases.listDocuments({ ...query, total: false, explain: true })).explain ?? {});
      })}>Explain this query</button>
      <ErrorBox error={act.error} />
      {x ? (
        <dl class="meta" id="explain">
          <dt>Plan</dt><dd>{x.plan}</dd>
          <dt>Index</dt><dd><code>{x.index}</code>{x.index === "$sequence" ? " (no index: a scan)" : ""}{x.indexAttributes?.length ? ` on ${x.indexAttributes.join(", ")}` : ""}</dd>
          <dt>Filters by index</dt><dd>{(x.indexFilters ?? []).join(", ") || "none"}</dd>
          <dt>Keys scanned</dt><dd>{x.keysScanned ?? "0"}</dd>
          <dt>Documents examined</dt><dd>{x.documentsExamined ?? "0"}</dd>
          <dt>Sorted in memory</dt><dd>{x.sortedInMemory ? "yes" : "no"}</dd>
          {x.documentsDenied && x.documentsDenied !== "0" ? <><dt>Denied by permissions</dt><dd>{x.documentsDenied}</dd></> : null}
        </dl>
      ) : null}
    </div>
  );
}

const actions = ["read", "create", "update", "delete"] as const;
const roleHints = ["any", "guests", "users", "users/verified", "user:", "team:", "member:", "label:"];

/** Splits `read("any")` into its action and role; null for anything else. */
function parsePermission(p: string): { action: string; role: string } | null {
  const m = /^([a-z]+)\("(.*)"\)$/.exec(p.trim());
  return m ? { action: m[1] ?? "", role: m[2] ?? "" } : null;
}

/**
 * A collection's permissions as chips: a role per chip, a row per action.
 * Roles are typed (any, users, user:<id>, team:<id>, label:<name>…) and
 * checked by the API on save, whose message names the bad one.
 */
function Permissions({ ids, coll, reload }: { ids: Ids; coll: CollectionJson; reload: () => void }) {
  const initial: Record<string, string[]> = {};
  const other: string[] = [];
  for (const p of coll.permissions ?? []) {
    const x = parsePermission(p);
    if (x) (initial[x.action] ??= []).push(x.role);
    else other.push(p);
  }
  // "write" (create, update and delete at once) is kept as its own row if set.
  const rows = [...actions, ...Object.keys(initial).filter((a) => !(actions as readonly string[]).includes(a))];
  const [perms, setPerms] = useState(initial);
  const [adding, setAdding] = useState<Record<string, string>>({});
  const [docSecurity, setDocSecurity] = useState(coll.documentSecurity ?? false);
  const [saved, setSaved] = useState(false);
  const act = useAction();
  const add = (a: string) => {
    const role = (adding[a] ?? "").trim();
    if (!role || (perms[a] ?? []).includes(role)) return;
    setPerms({ ...perms, [a]: [...(perms[a] ?? []), role] });
    setAdding({ ...adding, [a]: "" });
    setSaved(false);
  };
  return (
    <form class="card" id="permissions" onSubmit={async (e) => {
      e.preventDefault();
      const values = [...rows.flatMap((a) => (perms[a] ?? []).map((r) => `${a}("${r}")`)), ...other];
      if (await act.run(() => api.databases.updateCollection({ ...ids, permissions: { values }, documentSecurity: docSecurity }))) {
        setSaved(true);
        reload();
      }
    }}>
      <h3>Collection permissions</h3>
      <p class="muted">Who may do what with every document of the collection. Roles: <code>any</code>, <code>guests</code>, <code>users</code>,
        {" "}<code>user:ID</code>, <code>team:ID</code> (or <code>team:ID/role</code>), <code>member:ID</code>, <code>label:NAME</code>.</p>
      <datalist id="role-hints">{roleHints.map((r) => <option key={r} value={r} />)}</datalist>
      <table>
        <tbody>{rows.map((a) => (
          <tr key={a} data-action={a}>
            <th>{a}</th>
            <td>
              {(perms[a] ?? []).map((r) => (
                <span class="chip" key={r} data-role={r}>{r}{" "}
                  <button type="button" class="link remove-role write" aria-label={`remove ${r} from ${a}`}
                    onClick={() => { setPerms({ ...perms, [a]: (perms[a] ?? []).filter((x) => x !== r) }); setSaved(false); }}>×</button>
                </span>
              ))}
              {(perms[a] ?? []).length === 0 ? <span class="muted">nobody </span> : null}
            </td>
            <td class="write">
              <input name={"role-" + a} list="role-hints" placeholder="role, e.g. users" value={adding[a] ?? ""}
                onInput={(e) => setAdding({ ...adding, [a]: e.currentTarget.value })}
                onKeyDown={(e) => { if (e.key === "Enter") { e.preventDefault(); add(a); } }} />{" "}
              <button type="button" class="small add-role" onClick={() => add(a)}>Add</button>
            </td>
          </tr>
        ))}</tbody>
      </table>
      {other.length ? <p class="muted">Kept as they are: {other.map((p) => <code key={p}>{p} </code>)}</p> : null}
      <label class="check"><input type="checkbox" name="documentSecurity" checked={docSecurity} disabled={may(ids.projectId) === "read"}
        onChange={(e) => { setDocSecurity(e.currentTarget.checked); setSaved(false); }} /> document security (a document's own permissions also grant access)</label>
      <ErrorBox error={act.error} />
      <button type="submit" class="primary write" disabled={act.busy}>Save permissions</button>
      {saved && !act.error ? <span class="muted" id="permissions-saved"> Saved.</span> : null}
    </form>
  );
}
