// The passkey helpers' conversions between WebAuthn's JSON forms and what
// navigator.credentials takes (no server needed). The whole ceremony runs
// in Chromium's virtual authenticator in cmd/cairn TestPasskeyBrowser.
import { test } from "node:test";
import assert from "node:assert/strict";
import { creationOptions, fromBase64url, requestOptions, toBase64url } from "../src/index.js";

test("base64url round trip", () => {
  for (const n of [0, 1, 2, 3, 31, 32, 33, 255]) {
    const b = new Uint8Array(n).map((_, i) => (i * 37 + n) & 0xff);
    const s = toBase64url(b);
    assert.doesNotMatch(s, /[+/=]/);
    assert.deepEqual(new Uint8Array(fromBase64url(s)), b);
  }
});

test("options JSON becomes ArrayBuffers where WebAuthn wants them", () => {
  const c = creationOptions(JSON.stringify({
    challenge: "AQID", rp: { id: "shop.localhost", name: "shop" }, user: { id: "YW5u", name: "ann", displayName: "Ann" },
    pubKeyCredParams: [{ type: "public-key", alg: -7 }], excludeCredentials: [{ type: "public-key", id: "BAU" }],
  }));
  assert.deepEqual(new Uint8Array(c.challenge as ArrayBuffer), new Uint8Array([1, 2, 3]));
  assert.equal(new TextDecoder().decode(c.user.id as ArrayBuffer), "ann");
  assert.deepEqual(new Uint8Array(c.excludeCredentials![0]!.id as ArrayBuffer), new Uint8Array([4, 5]));
  assert.equal(c.rp.id, "shop.localhost");
  const r = requestOptions(JSON.stringify({ challenge: "AQID", rpId: "shop.localhost", userVerification: "required" }));
  assert.deepEqual(new Uint8Array(r.challenge as ArrayBuffer), new Uint8Array([1, 2, 3]));
  assert.equal(r.allowCredentials, undefined);
  assert.equal(r.userVerification, "required");
});
