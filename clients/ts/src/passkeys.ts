import type { PasskeyJson, PasskeyService } from "./gen/cairn/v1/passkeys_pb.js";
import type { Cairn, CallOptions } from "./client.js";
import { CairnError } from "./errors.js";
import { date, session, type SessionInfo } from "./convert.js";

// Passkeys (WebAuthn) in the browser: Cairn hands out the options as the
// WebAuthn JSON forms and takes the credential back as JSON; these helpers
// turn them into what navigator.credentials wants (ArrayBuffers) and back.

/** A passkey of the signed-in user, as the facade shows it. */
export interface PasskeyInfo {
  id: string;
  name: string;
  /** The relying party id it signs in at (the site's `<project>.<sites domain>`, or the app's host). */
  rpId: string;
  credentialId: string;
  backedUp: boolean;
  /** Its signature counter went back (a cloned key?): it signs nobody in until deleted. */
  cloneSuspected: boolean;
  createdAt: Date | undefined;
  lastUsedAt: Date | undefined;
}

export function passkey(p: PasskeyJson = {}): PasskeyInfo {
  return {
    id: p.id ?? "", name: p.name ?? "", rpId: p.rpId ?? "", credentialId: p.credentialId ?? "", backedUp: !!p.backedUp,
    cloneSuspected: !!p.cloneSuspected, createdAt: date(p.createdAt), lastUsedAt: date(p.lastUsedAt),
  };
}

/** base64url (no padding) to bytes. */
export function fromBase64url(s: string): ArrayBuffer {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (s.length % 4)) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

/** bytes to base64url (no padding). */
export function toBase64url(b: ArrayBuffer | ArrayBufferView): string {
  const u = b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  let bin = "";
  for (let i = 0; i < u.length; i++) bin += String.fromCharCode(u[i]!);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

type Json = Record<string, unknown>;
type Descriptor = { id: string; type: string; transports?: string[] };

function descriptors(list: unknown): PublicKeyCredentialDescriptor[] | undefined {
  if (!Array.isArray(list)) return undefined;
  return (list as Descriptor[]).map((d) => ({
    id: fromBase64url(d.id), type: "public-key" as const, ...(d.transports ? { transports: d.transports as AuthenticatorTransport[] } : {}),
  }));
}

/** PublicKeyCredentialCreationOptionsJSON to the options navigator.credentials.create takes. */
export function creationOptions(json: string): PublicKeyCredentialCreationOptions {
  const o = JSON.parse(json) as Json;
  const user = o["user"] as Json;
  const out = { ...o, challenge: fromBase64url(o["challenge"] as string), user: { ...user, id: fromBase64url(user["id"] as string) } } as Json;
  const ex = descriptors(o["excludeCredentials"]);
  if (ex) out["excludeCredentials"] = ex;
  return out as unknown as PublicKeyCredentialCreationOptions;
}

/** PublicKeyCredentialRequestOptionsJSON to the options navigator.credentials.get takes. */
export function requestOptions(json: string): PublicKeyCredentialRequestOptions {
  const o = JSON.parse(json) as Json;
  const out = { ...o, challenge: fromBase64url(o["challenge"] as string) } as Json;
  const allow = descriptors(o["allowCredentials"]);
  if (allow) out["allowCredentials"] = allow;
  return out as unknown as PublicKeyCredentialRequestOptions;
}

/** A PublicKeyCredential as JSON (its toJSON(), done by hand where the browser has none). */
export function credentialJSON(c: PublicKeyCredential): string {
  const withJSON = c as PublicKeyCredential & { toJSON?: () => unknown };
  if (typeof withJSON.toJSON === "function") return JSON.stringify(withJSON.toJSON());
  const r = c.response as AuthenticatorResponse & Partial<AuthenticatorAttestationResponse & AuthenticatorAssertionResponse>;
  const response: Json = { clientDataJSON: toBase64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response["attestationObject"] = toBase64url(r.attestationObject);
    if (typeof r.getTransports === "function") response["transports"] = r.getTransports();
  }
  if (r.authenticatorData) response["authenticatorData"] = toBase64url(r.authenticatorData);
  if (r.signature) response["signature"] = toBase64url(r.signature);
  if (r.userHandle) response["userHandle"] = toBase64url(r.userHandle);
  return JSON.stringify({
    id: c.id, rawId: toBase64url(c.rawId), type: c.type, response,
    clientExtensionResults: c.getClientExtensionResults(), authenticatorAttachment: c.authenticatorAttachment ?? undefined,
  });
}

function credentials(): CredentialsContainer {
  const nav = (globalThis as { navigator?: Navigator }).navigator;
  if (!nav?.credentials || typeof PublicKeyCredential === "undefined") {
    throw new CairnError("failed_precondition", "passkeys need a browser with WebAuthn (navigator.credentials) in a secure context (https, or localhost)");
  }
  return nav.credentials;
}

/** Browser options of a passkey ceremony. */
export interface PasskeyOptions {
  signal?: AbortSignal;
}

/** The signed-in user's passkeys: `cairn.passkeys.register()`, `list()`, `delete(id)`. */
export class Passkeys {
  constructor(private readonly cairn: Cairn) {}

  private get svc() {
    return this.cairn.service<typeof PasskeyService>("PasskeyService");
  }

  /** Creates a passkey on this device (the browser asks the user) and registers it. */
  async register(opts: PasskeyOptions & { name?: string } = {}): Promise<PasskeyInfo> {
    const begin = await this.svc.beginPasskeyRegistration({});
    const cred = (await credentials().create({
      publicKey: creationOptions(begin.optionsJson ?? ""), ...(opts.signal ? { signal: opts.signal } : {}),
    })) as PublicKeyCredential | null;
    if (!cred) throw new CairnError("aborted", "no passkey was created");
    const res = await this.svc.finishPasskeyRegistration({ credentialJson: credentialJSON(cred), name: opts.name ?? "" });
    return passkey(res.passkey);
  }

  async list(opts?: CallOptions): Promise<PasskeyInfo[]> {
    const res = await this.svc.listPasskeys({}, opts);
    return (res.passkeys ?? []).map((p) => passkey(p));
  }

  async delete(id: string, opts?: CallOptions): Promise<void> {
    await this.svc.deletePasskey({ passkeyId: id }, opts);
  }

  /**
   * Signs in with a passkey: without an email the browser offers every
   * passkey it holds for this site; with one, only that account's. The
   * session goes to the auth store.
   */
  async signIn(opts: PasskeyOptions & { email?: string } = {}): Promise<SessionInfo> {
    const begin = await this.svc.beginPasskeySignIn({ email: opts.email ?? "" }, { guest: true });
    const cred = await this.get(begin.optionsJson ?? "", opts);
    const res = await this.svc.finishPasskeySignIn({ credentialJson: credentialJSON(cred) }, { guest: true });
    this.cairn.auth.save(res.secret ?? "");
    return session(res.session);
  }

  /** Proves the second factor of a session signed in with a password (MFA) with a passkey. */
  async completeMfa(opts: PasskeyOptions = {}): Promise<SessionInfo> {
    const begin = await this.svc.beginPasskeyMfa({});
    const cred = await this.get(begin.optionsJson ?? "", opts);
    const res = await this.svc.finishPasskeyMfa({ credentialJson: credentialJSON(cred) });
    return session(res.session);
  }

  private async get(optionsJSON: string, opts: PasskeyOptions): Promise<PublicKeyCredential> {
    const cred = (await credentials().get({
      publicKey: requestOptions(optionsJSON), ...(opts.signal ? { signal: opts.signal } : {}),
    })) as PublicKeyCredential | null;
    if (!cred) throw new CairnError("aborted", "no passkey was chosen");
    return cred;
  }
}
