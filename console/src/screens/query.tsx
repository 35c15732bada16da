// The document grid's query builder: conditions with every operator the
// API has, and/or groups (nested), an order picker ($random included), and
// the query shown as the TypeScript client's call and as the JSON sent.
import { useState } from "preact/hooks";
import type { AttributeJson, FilterJson, OrderJson } from "@cairn/gen/databases_pb.js";
import type { JsonValue } from "../api.js";

/** How many values an operator takes: "n" is one or more (equal: IN). */
type Arity = 0 | 1 | 2 | "n";

/** Every operator of databases.proto's Operator, by the TS client's names; time ones take no attribute. */
export const operators: { op: string; arity: Arity; time?: true; builder?: false }[] = [
  { op: "equal", arity: "n" }, { op: "notEqual", arity: "n" },
  { op: "lessThan", arity: 1 }, { op: "lessThanEqual", arity: 1 }, { op: "greaterThan", arity: 1 }, { op: "greaterThanEqual", arity: 1 },
  { op: "between", arity: 2 }, { op: "notBetween", arity: 2, builder: false },
  { op: "isNull", arity: 0 }, { op: "isNotNull", arity: 0 }, { op: "exists", arity: 0 }, { op: "notExists", arity: 0 },
  { op: "startsWith", arity: 1 }, { op: "notStartsWith", arity: 1, builder: false },
  { op: "endsWith", arity: 1 }, { op: "notEndsWith", arity: 1, builder: false },
  { op: "contains", arity: "n" }, { op: "notContains", arity: "n", builder: false },
  { op: "containsAny", arity: "n" }, { op: "containsAll", arity: "n" },
  { op: "search", arity: 1 }, { op: "notSearch", arity: 1, builder: false }, { op: "regex", arity: 1 },
  { op: "createdBefore", arity: 1, time: true }, { op: "createdAfter", arity: 1, time: true }, { op: "createdBetween", arity: 2, time: true },
  { op: "updatedBefore", arity: 1, time: true }, { op: "updatedAfter", arity: 1, time: true }, { op: "updatedBetween", arity: 2, time: true },
  // Geo, on a point attribute: a [longitude, latitude] and meters; a ring of points.
  { op: "distanceLessThan", arity: 2 }, { op: "distanceGreaterThan", arity: 2 }, { op: "distanceEqual", arity: 2 }, { op: "distanceNotEqual", arity: 2 },
  { op: "intersects", arity: 1 }, { op: "notIntersects", arity: 1 },
];
const meta = (op: string) => operators.find((o) => o.op === op) ?? { op, arity: 1 as Arity };

export type Cond = { kind: "cond"; attribute: string; op: string; values: string[] };
export type Group = { kind: "group"; op: "and" | "or"; items: Node[] };
type Node = Cond | Group;
export type Order = { attribute: string; desc: boolean; seed?: string };

/** The builder's state; the root group's items are AND-ed (or OR-ed) at the top. */
export type Query = { root: Group; orders: Order[] };

export const emptyQuery = (): Query => ({ root: { kind: "group", op: "and", items: [] }, orders: [{ attribute: "$createdAt", desc: true }] });

const newCond = (attribute: string): Cond => ({ kind: "cond", attribute, op: "equal", values: [""] });

/** A value as typed, by the attribute's type: numbers and booleans parsed, text kept; unknown fields take JSON when it parses. */
function typed(s: string, type: string | undefined): JsonValue {
  switch (type) {
    case "ATTRIBUTE_TYPE_INTEGER": case "ATTRIBUTE_TYPE_FLOAT": return s.trim() !== "" && !isNaN(Number(s)) ? Number(s) : s;
    case "ATTRIBUTE_TYPE_BOOLEAN": return s === "true" ? true : s === "false" ? false : s;
    case undefined: case "ATTRIBUTE_TYPE_POINT": break;
    default: return s;
  }
  try {
    return JSON.parse(s) as JsonValue;
  } catch {
    return s;
  }
}

function values(c: Cond, attrs: AttributeJson[]): JsonValue[] {
  const m = meta(c.op);
  if (m.arity === 0) return [];
  const type = m.time ? "time" : c.attribute.startsWith("$") ? (c.attribute === "$sequence" ? "ATTRIBUTE_TYPE_INTEGER" : "text") : attrs.find((a) => a.key === c.attribute)?.type;
  // Regex and search take text whatever the attribute's type.
  const t = c.op === "regex" || c.op.endsWith("earch") || c.op.endsWith("With") ? "text" : type;
  const vs = m.arity === 1 ? c.values.slice(0, 1) : m.arity === 2 ? [c.values[0] ?? "", c.values[1] ?? ""] : c.values;
  return vs.map((v) => typed(v, t));
}

const protoOp = (op: string) => ("OPERATOR_" + op.replace(/[A-Z]/g, (x) => "_" + x).toUpperCase()) as FilterJson["op"];

function nodeJSON(n: Node, attrs: AttributeJson[]): FilterJson {
  if (n.kind === "group") return { op: protoOp(n.op), filters: n.items.map((x) => nodeJSON(x, attrs)) };
  const m = meta(n.op);
  const f: FilterJson = { op: protoOp(n.op) };
  if (!m.time) f.attribute = n.attribute;
  const vs = values(n, attrs);
  if (vs.length) f.values = vs;
  return f;
}

/** The request's filters: the root's items AND-ed (the API's top level), or one OR of them. */
export function filtersOf(q: Query, attrs: AttributeJson[]): FilterJson[] {
  if (q.root.items.length === 0) return [];
  if (q.root.op === "or" && q.root.items.length > 1) return [nodeJSON(q.root, attrs)];
  return q.root.items.map((x) => nodeJSON(x, attrs));
}

export function ordersOf(q: Query): OrderJson[] {
  return q.orders.filter((o) => o.attribute).map((o) => (o.attribute === "$random" ? { attribute: "$random", seed: o.seed ?? "0" } : { attribute: o.attribute, desc: o.desc }));
}

// --- the TypeScript client's call, for the developer to copy ---

function nodeTS(n: Node, attrs: AttributeJson[]): string {
  if (n.kind === "group") return `Query.${n.op}(${n.items.map((x) => nodeTS(x, attrs)).join(", ")})`;
  const m = meta(n.op);
  const vs = values(n, attrs).map((v) => JSON.stringify(v));
  if (m.builder === false) return `{ op: "${n.op}", attribute: ${JSON.stringify(n.attribute)}, values: [${vs.join(", ")}] }`;
  return `Query.${n.op}(${[...(m.time ? [] : [JSON.stringify(n.attribute)]), ...vs].join(", ")})`;
}

export function typescriptOf(q: Query, attrs: AttributeJson[], db: string, coll: string, limit: number, offset: number): string {
  const items = q.root.items.length === 0 ? [] : q.root.op === "or" && q.root.items.length > 1 ? [nodeTS(q.root, attrs)] : q.root.items.map((x) => nodeTS(x, attrs));
  const orders = q.orders.filter((o) => o.attribute).map((o) => JSON.stringify(o.attribute === "$random" ? "$random" : (o.desc ? "-" : "") + o.attribute));
  const lines = [`filters: [${items.length ? "\n    " + items.join(",\n    ") + ",\n  " : ""}]`, `orders: [${orders.join(", ")}]`, `limit: ${limit}`];
  if (offset) lines.push(`offset: ${offset}`);
  return `const { documents, total } = await cairn.collection(${JSON.stringify(db)}, ${JSON.stringify(coll)}).list({\n  ${lines.join(",\n  ")},\n});`;
}

// --- the builder ---

type Edit = (q: Query) => void;

export function QueryBuilder(props: { query: Query; attributes: string[]; onChange: Edit }) {
  const { query, attributes, onChange } = props;
  const fields = ["$id", "$createdAt", "$updatedAt", "$sequence", ...attributes];
  // Groups are edited in place on a copy; every edit hands a new query up.
  const edit = (f: (q: Query) => void) => {
    const q = structuredClone(query);
    f(q);
    onChange(q);
  };
  return (
    <div class="query-builder">
      <GroupView group={query.root} path={[]} fields={fields} edit={edit} depth={0} />
      <div class="orders" id="query-orders">
        <span class="muted">Order by</span>
        {query.orders.map((o, i) => (
          <span class="order" key={i} data-order={i}>
            <select name="orderAttribute" value={o.attribute} onChange={(e) => edit((q) => {
              const a = e.currentTarget.value;
              // A fixed seed keeps pages of one shuffle consistent.
              q.orders[i] = a === "$random" ? { attribute: a, desc: false, seed: String(1 + Math.floor(Math.random() * 2 ** 31)) } : { attribute: a, desc: q.orders[i]?.desc ?? false };
            })}>
              {[...fields, "$random"].map((f) => <option key={f} value={f}>{f === "$random" ? "random (orderRandom)" : f}</option>)}
            </select>
            {o.attribute !== "$random" ? (
              <select name="orderDirection" value={o.desc ? "desc" : "asc"} onChange={(e) => edit((q) => { q.orders[i]!.desc = e.currentTarget.value === "desc"; })}>
                <option value="asc">ascending</option><option value="desc">descending</option>
              </select>
            ) : <span class="muted"> seed {o.seed}</span>}
            <button type="button" class="link" aria-label="remove order" onClick={() => edit((q) => { q.orders.splice(i, 1); })}>×</button>
          </span>
        ))}
        {query.orders.length < 8 ? <button type="button" class="small" id="add-order" onClick={() => edit((q) => { q.orders.push({ attribute: attributes[0] ?? "$id", desc: false }); })}>+ order</button> : null}
      </div>
    </div>
  );
}

function at(q: Query, path: number[]): Group {
  let g = q.root;
  for (const i of path) g = g.items[i] as Group;
  return g;
}

function GroupView(props: { group: Group; path: number[]; fields: string[]; edit: (f: (q: Query) => void) => void; depth: number }) {
  const { group, path, fields, edit, depth } = props;
  return (
    <div class={depth ? "group nested" : "group"} data-group={path.join(".") || "root"}>
      <div class="group-head">
        <span class="muted">{depth ? "group: " : ""}match</span>
        <select name="groupOp" value={group.op} onChange={(e) => edit((q) => { at(q, path).op = e.currentTarget.value as "and" | "or"; })}>
          <option value="and">all (and)</option><option value="or">any (or)</option>
        </select>
        <span class="muted">of</span>
        {depth ? <button type="button" class="link remove-group" onClick={() => edit((q) => { at(q, path.slice(0, -1)).items.splice(path[path.length - 1]!, 1); })}>remove group</button> : null}
      </div>
      {group.items.map((n, i) => n.kind === "group"
        ? <GroupView key={i} group={n} path={[...path, i]} fields={fields} edit={edit} depth={depth + 1} />
        : <CondView key={i} cond={n} fields={fields} edit={(f) => edit((q) => f(at(q, path).items[i] as Cond))}
          remove={() => edit((q) => { at(q, path).items.splice(i, 1); })} />)}
      <div class="group-actions">
        <button type="button" class="small add-condition" onClick={() => edit((q) => { at(q, path).items.push(newCond(fields[4] ?? "$id")); })}>+ condition</button>
        {depth < 2 ? <button type="button" class="small add-group" onClick={() => edit((q) => {
          at(q, path).items.push({ kind: "group", op: group.op === "and" ? "or" : "and", items: [newCond(fields[4] ?? "$id")] });
        })}>+ group</button> : null}
      </div>
    </div>
  );
}

function CondView(props: { cond: Cond; fields: string[]; edit: (f: (c: Cond) => void) => void; remove: () => void }) {
  const { cond: c, fields, edit } = props;
  const m = meta(c.op);
  const n = m.arity === "n" ? Math.max(c.values.length, 1) : m.arity;
  const placeholder = m.time ? "2026-01-31T00:00:00Z" : "value";
  return (
    <div class="condition">
      {m.time ? <span class="muted attr-fixed">{c.op.startsWith("created") ? "$createdAt" : "$updatedAt"}</span> : (
        <select name="attribute" value={c.attribute} onChange={(e) => edit((x) => { x.attribute = e.currentTarget.value; })}>
          {fields.map((f) => <option key={f} value={f}>{f}</option>)}
        </select>
      )}
      <select name="operator" value={c.op} onChange={(e) => edit((x) => { x.op = e.currentTarget.value; })}>
        {operators.map((o) => <option key={o.op} value={o.op}>{o.op}</option>)}
      </select>
      {Array.from({ length: n }, (_, i) => (
        <input key={i} name={"value" + i} placeholder={m.arity === 2 ? (i ? "to" : "from") : placeholder} value={c.values[i] ?? ""}
          onInput={(e) => { const v = e.currentTarget.value; edit((x) => { x.values[i] = v; }); }} />
      ))}
      {m.arity === "n" ? <button type="button" class="small add-value" title="any of these values" onClick={() => edit((x) => { x.values.push(""); })}>+ value</button> : null}
      {m.arity === "n" && n > 1 ? <button type="button" class="link" aria-label="remove value" onClick={() => edit((x) => { x.values.pop(); })}>−</button> : null}
      <button type="button" class="link remove-condition" aria-label="remove condition" onClick={props.remove}>×</button>
    </div>
  );
}

/** The query as the TS client's call or the JSON request, switchable. */
export function QueryCode({ ts, json }: { ts: string; json: string }) {
  const [as, setAs] = useState<"ts" | "json">("ts");
  return (
    <details class="query-code" id="query-code">
      <summary>Query as code</summary>
      <div class="subtabs">
        <button type="button" id="query-as-ts" class={as === "ts" ? "tab active" : "tab"} onClick={() => setAs("ts")}>TypeScript client</button>
        <button type="button" id="query-as-json" class={as === "json" ? "tab active" : "tab"} onClick={() => setAs("json")}>JSON (ListDocuments)</button>
      </div>
      <pre class="mono" id="query-text">{as === "ts" ? ts : json}</pre>
    </details>
  );
}
