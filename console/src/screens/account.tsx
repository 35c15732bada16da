// The signed-in account's own settings: its password and its second
// factor (TOTP with recovery codes). The operator key is no account.
import { useState } from "preact/hooks";
import { api, currentMe } from "../api.js";
import { QRCode } from "../qr.js";
import { ErrorBox, useAction, useLoad } from "../ui.js";

export function Account() {
  const me = currentMe();
  if (!me.email) return <section class="screen"><h2>Account</h2><p class="muted">The operator key is no account: it has no password or second factor to change here.</p></section>;
  return (
    <section class="screen">
      <h2>Account <span class="muted">{me.email}</span></h2>
      <ChangePassword />
      <Mfa />
    </section>
  );
}

function ChangePassword() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [done, setDone] = useState(false);
  const act = useAction();
  return (
    <form class="card" id="change-password" onSubmit={async (e) => {
      e.preventDefault();
      setDone(false);
      if (await act.run(() => api.operators.updateCurrentOperatorPassword({ currentPassword: current, newPassword: next }))) {
        setCurrent(""); setNext(""); setDone(true);
      }
    }}>
      <h3>Change password</h3>
      <p class="muted">Your other sessions end; this one stays. Common passwords are refused.</p>
      <div class="row">
        <label>Current password <input name="current-password" type="password" autoComplete="current-password" value={current} onInput={(e) => setCurrent(e.currentTarget.value)} /></label>
        <label>New password <input name="new-password" type="password" autoComplete="new-password" value={next} onInput={(e) => setNext(e.currentTarget.value)} /></label>
      </div>
      <ErrorBox error={act.error} />
      {done ? <p class="ok" id="password-changed">Password changed; your other sessions have ended.</p> : null}
      <button type="submit" class="primary" disabled={!current || next.length < 8 || act.busy}>Change password</button>
    </form>
  );
}

function Mfa() {
  const cur = useLoad(() => api.operators.getCurrentOperator({}), []);
  const [enrol, setEnrol] = useState<{ secret: string; uri: string } | null>(null);
  const [code, setCode] = useState("");
  const [newCode, setNewCode] = useState("");
  const [codes, setCodes] = useState<string[]>([]);
  const act = useAction();
  const on = cur.data?.operator?.mfa ?? false;
  return (
    <div class="card" id="mfa">
      <h3>Two-factor sign-in</h3>
      <ErrorBox error={cur.error ?? act.error} />
      {codes.length > 0 ? (
        <div id="recovery-codes">
          <p><strong>Recovery codes</strong> — shown once. Each signs in once in place of a code; keep them somewhere safe.</p>
          <pre>{codes.join("\n")}</pre>
          <button type="button" onClick={() => setCodes([])}>I have saved them</button>
        </div>
      ) : on ? (
        <div>
          <p id="mfa-state">On: sign-in asks for a code from your authenticator app.</p>
          <form id="mfa-regenerate" onSubmit={async (e) => {
            e.preventDefault();
            let r: { recoveryCodes?: string[] } = {};
            if (await act.run(async () => { r = await api.operators.regenerateCurrentOperatorRecoveryCodes({ code: newCode.trim() }); })) {
              setCodes(r.recoveryCodes ?? []); setNewCode("");
            }
          }}>
            <label>Code from the app, for new recovery codes (the old ones stop working) <input name="mfa-regenerate-code" inputMode="numeric" autoComplete="one-time-code" value={newCode} onInput={(e) => setNewCode(e.currentTarget.value)} /></label>
            <button type="submit" disabled={!/^\d{6}$/.test(newCode.trim()) || act.busy}>New recovery codes</button>
          </form>
          <form id="mfa-disable" onSubmit={async (e) => {
            e.preventDefault();
            if (await act.run(() => api.operators.deleteCurrentOperatorTotp({ code: code.trim() }))) { setCode(""); cur.reload(); }
          }}>
            <label>Code or recovery code to switch it off <input name="mfa-off-code" autoComplete="one-time-code" value={code} onInput={(e) => setCode(e.currentTarget.value)} /></label>
            <button type="submit" class="danger" disabled={code.trim().length < 6 || act.busy}>Switch off</button>
          </form>
        </div>
      ) : enrol ? (
        <form id="mfa-verify" onSubmit={async (e) => {
          e.preventDefault();
          let r: { recoveryCodes?: string[] } = {};
          if (await act.run(async () => { r = await api.operators.verifyCurrentOperatorTotp({ code: code.trim() }); })) {
            setCodes(r.recoveryCodes ?? []); setEnrol(null); setCode(""); cur.reload();
          }
        }}>
          <p>Add this account to your authenticator app: scan the code, open the link on your phone, or type the key.</p>
          <p><QRCode id="totp-qr" text={enrol.uri} /></p>
          <p><a id="otpauth-uri" href={enrol.uri}>{enrol.uri}</a></p>
          <p>Key: <code id="totp-secret">{enrol.secret}</code></p>
          <label>Code from the app <input name="mfa-code" inputMode="numeric" autoComplete="one-time-code" value={code} onInput={(e) => setCode(e.currentTarget.value)} /></label>
          <button type="submit" class="primary" disabled={!/^\d{6}$/.test(code.trim()) || act.busy}>Verify and switch on</button>
        </form>
      ) : (
        <div>
          <p id="mfa-state" class="muted">Off: your password alone signs you in.</p>
          <button type="button" class="primary" id="mfa-enrol" disabled={act.busy} onClick={() => void act.run(async () => {
            const r = await api.operators.createCurrentOperatorTotp({});
            setEnrol({ secret: r.secret ?? "", uri: r.uri ?? "" });
          })}>Set up an authenticator app</button>
        </div>
      )}
    </div>
  );
}

/** The page an invitation link opens: the invitee chooses a password. */
export function AcceptInvitation({ token, onDone }: { token: string; onDone: (email: string) => void }) {
  const [password, setPassword] = useState("");
  const [name, setName] = useState("");
  const act = useAction();
  return (
    <main class="signin">
      <form id="accept-invitation" onSubmit={async (e) => {
        e.preventDefault();
        let email = "";
        if (await act.run(async () => {
          const r = await api.operators.acceptOperatorInvitation({ token, password, ...(name ? { name } : {}) });
          email = r.operator?.email ?? "";
        })) onDone(email);
      }}>
        <h1>Cairn console</h1>
        <p class="muted">You were invited. Choose your password (at least 8 characters, not a common one); the link works once.</p>
        <label>Name (optional) <input id="invite-name" value={name} onInput={(e) => setName(e.currentTarget.value)} /></label>
        <label>Password <input id="invite-password" type="password" autoComplete="new-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} autoFocus /></label>
        <ErrorBox error={act.error} />
        <button type="submit" class="primary" disabled={password.length < 8 || act.busy}>Set password</button>
      </form>
    </main>
  );
}
