// The console's entry: sign-in with the operator key, then the screens.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, storedKey, storeKey, whenRefused, describe } from "./api.js";
import { Link, navigate, usePath, ErrorBox } from "./ui.js";
import { Projects } from "./screens/projects.js";
import { Keys } from "./screens/keys.js";
import { Databases, CollectionView } from "./screens/databases.js";
import { Storage, BucketView } from "./screens/storage.js";
import { Sites } from "./screens/sites.js";
import { Functions } from "./screens/functions.js";
import { Audit } from "./screens/audit.js";
import { Realtime } from "./screens/realtime.js";
import { Auth } from "./screens/auth.js";

function SignIn({ onSignedIn, reason }: { onSignedIn: () => void; reason: string }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  return (
    <main class="signin">
      <form id="signin" onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setError(null);
        storeKey(key.trim());
        try {
          // Only the operator may list projects: a project key is refused.
          await api.projects.listProjects({ pageSize: 1 });
          onSignedIn();
        } catch (err) {
          storeKey("");
          setError(err);
        } finally {
          setBusy(false);
        }
      }}>
        <h1>Cairn console</h1>
        <p class="muted">Sign in with the operator key (<code>--admin-key</code>, or <code>admin.key</code> in the data directory).
          It is kept in this tab's session storage only.</p>
        {reason ? <p class="error">{reason}</p> : null}
        <label>Operator key
          <input id="operator-key" type="password" autoComplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} autoFocus />
        </label>
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={!key || busy}>Sign in</button>
      </form>
    </main>
  );
}

const sections: [string, string][] = [
  ["keys", "API keys"], ["auth", "Auth"], ["databases", "Databases"], ["storage", "Storage"],
  ["sites", "Sites"], ["functions", "Functions"], ["realtime", "Realtime"], ["audit", "Audit log"],
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
    case "realtime": body = <Realtime project={project} />; break;
    case "audit": body = <Audit project={project} subject={new URLSearchParams(location.search).get("subject") ?? ""} />; break;
    default: body = <p>No such screen.</p>;
  }
  return (
    <div class="project">
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
  const [signedIn, setSignedIn] = useState(storedKey() !== "");
  const [reason, setReason] = useState("");
  const path = usePath();
  useEffect(() => whenRefused(() => {
    storeKey("");
    setReason("The API refused the key (unauthenticated): sign in again.");
    setSignedIn(false);
  }), []);
  if (!signedIn) return <SignIn reason={reason} onSignedIn={() => { setReason(""); setSignedIn(true); }} />;
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  let screen;
  if (parts[0] === "p" && parts[1]) screen = <ProjectScreen project={parts[1]} rest={parts.slice(2)} />;
  else screen = <Projects />;
  return (
    <div class="layout">
      <header>
        <Link to="/" class="brand">Cairn</Link>
        <span class="muted">console · {location.host}</span>
        <button type="button" class="link" id="signout" onClick={() => { storeKey(""); setSignedIn(false); navigate("/"); }}>Sign out</button>
      </header>
      {screen}
    </div>
  );
}

// An unexpected failure outside a screen still says what the API said.
addEventListener("unhandledrejection", (e) => console.error("console:", describe(e.reason).message));

render(<App />, document.getElementById("app")!);
