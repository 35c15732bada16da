// The console's entry: sign-in with an operator account (email and
// password) or the operator key, then the screens the caller may use.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, storedKey, storeKey, whenRefused, describe, loadMe, may, type Me } from "./api.js";
import { Link, navigate, usePath, ErrorBox } from "./ui.js";
import { Projects } from "./screens/projects.js";
import { Keys } from "./screens/keys.js";
import { Databases, CollectionView } from "./screens/databases.js";
import { Storage, BucketView } from "./screens/storage.js";
import { Sites } from "./screens/sites.js";
import { Functions } from "./screens/functions.js";
import { Audit } from "./screens/audit.js";
import { Operators } from "./screens/operators.js";
import { Realtime } from "./screens/realtime.js";
import { Auth } from "./screens/auth.js";
import { Webhooks } from "./screens/webhooks.js";

function SignIn({ onSignedIn, reason }: { onSignedIn: (me: Me) => void; reason: string }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [key, setKey] = useState("");
  const [withKey, setWithKey] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (withKey) {
        storeKey(key.trim());
      } else {
        storeKey("");
        const r = await api.operators.createOperatorSession({ email: email.trim(), password });
        storeKey(r.secret ?? "");
      }
      // Only operators (the key, or an account) are answered: a project key is refused.
      onSignedIn(await loadMe());
    } catch (err) {
      storeKey("");
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <form id="signin" onSubmit={submit}>
        <h1>Cairn console</h1>
        {reason ? <p class="error">{reason}</p> : null}
        {withKey ? (
          <>
            <p class="muted">Sign in with the operator key (<code>--admin-key</code>, or <code>admin.key</code> in the data directory).
              It is kept in this tab's session storage only.</p>
            <label>Operator key
              <input id="operator-key" type="password" autoComplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} autoFocus />
            </label>
          </>
        ) : (
          <>
            <p class="muted">Sign in with your operator account. The session lasts 12 hours and is kept in this tab only.</p>
            <label>Email
              <input id="operator-email" type="email" autoComplete="username" value={email} onInput={(e) => setEmail(e.currentTarget.value)} autoFocus />
            </label>
            <label>Password
              <input id="operator-password" type="password" autoComplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
            </label>
          </>
        )}
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={(withKey ? !key : !email || !password) || busy}>Sign in</button>
        <button type="button" class="link" id="signin-switch" onClick={() => { setWithKey(!withKey); setError(null); }}>
          {withKey ? "Sign in with an operator account instead" : "Sign in with the operator key instead"}</button>
      </form>
    </main>
  );
}

const sections: [string, string][] = [
  ["keys", "API keys"], ["auth", "Auth"], ["databases", "Databases"], ["storage", "Storage"],
  ["sites", "Sites"], ["functions", "Functions"], ["webhooks", "Webhooks"], ["realtime", "Realtime"], ["audit", "Audit log"],
];

function ProjectScreen({ project, rest }: { project: string; rest: string[] }) {
  const section = rest[0] ?? "keys";
  let body;
  switch (section) {
    case "keys": body = <Keys project={project} />; break;
    case "databases":
      body = rest[1] && rest[2] ? <CollectionView project={project} db={rest[1]} coll={rest[2]} /> : <Databases project={project} />;
      break;
    case "storage": body = rest[1] ? <BucketView project={project} bucket={rest[1]} /> : <Storage project={project} />; break;
    case "sites": body = <Sites project={project} />; break;
    case "functions": body = <Functions project={project} />; break;
    case "auth": body = <Auth project={project} />; break;
    case "webhooks": body = <Webhooks project={project} />; break;
    case "realtime": body = <Realtime project={project} />; break;
    case "audit": body = <Audit project={project} subject={new URLSearchParams(location.search).get("subject") ?? ""} />; break;
    default: body = <p>No such screen.</p>;
  }
  // Hide what the caller's role cannot do (the API refuses it anyway).
  const right = may(project);
  const cls = "project" + (right === "read" ? " read-only" : "") + (right !== "owner" ? " not-owner" : "");
  return (
    <div class={cls} data-right={right}>
      <nav class="tabs">
        <span class="crumb"><Link to="/">Projects</Link> / <strong id="project-id">{project}</strong></span>
        {sections.map(([id, label]) => (
          <Link key={id} to={`/p/${project}/${id}`} class={id === section ? "tab active" : "tab"} id={"tab-" + id}>{label}</Link>
        ))}
      </nav>
      <section class="screen">{body}</section>
    </div>
  );
}

function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [reason, setReason] = useState("");
  const path = usePath();
  const signOut = (why: string) => {
    storeKey("");
    setReason(why);
    setMe(null);
  };
  useEffect(() => whenRefused(() => signOut("The API refused the credential (unauthenticated): sign in again.")), []);
  // A stored credential (a reload): ask who it is before showing anything.
  const [checking, setChecking] = useState(storedKey() !== "");
  useEffect(() => {
    if (!checking) return;
    loadMe().then(setMe, () => storeKey("")).finally(() => setChecking(false));
  }, []);
  if (checking) return <p class="muted">Loading…</p>;
  if (!me) return <SignIn reason={reason} onSignedIn={(m) => { setReason(""); setMe(m); }} />;
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  let screen;
  if (parts[0] === "p" && parts[1]) screen = <ProjectScreen project={parts[1]} rest={parts.slice(2)} />;
  else if (parts[0] === "operators" && me.admin) screen = <Operators />;
  else screen = <Projects admin={me.admin} />;
  return (
    <div class="layout">
      <header>
        <Link to="/" class="brand">Cairn</Link>
        <span class="muted">console · {location.host}</span>
        {me.admin ? <Link to="/operators" id="nav-operators">Operators</Link> : null}
        <span class="muted" id="whoami">{me.email || "operator key"}{me.admin ? " (admin)" : ""}</span>
        <button type="button" class="link" id="signout" onClick={async () => {
          // An account's session ends on the server too; the key has none.
          if (me.email) await api.operators.deleteCurrentOperatorSession({}).catch(() => undefined);
          signOut("");
          navigate("/");
        }}>Sign out</button>
      </header>
      {screen}
    </div>
  );
}

// An unexpected failure outside a screen still says what the API said.
addEventListener("unhandledrejection", (e) => console.error("console:", describe(e.reason).message));

render(<App />, document.getElementById("app")!);
