/**
 * App credentials: JWKS-based end-user auth (inline and URL, with issuer and audience checks),
 * service-key rotation, and the separation of the admin token and app keys.
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { fixture, startServer, type TestServer } from "../_helpers.ts";
import { WsClient } from "./_ws_client.ts";

interface CreatedApp {
  app_id: string;
  subdomain: string;
  service_key: string;
  jwt_secret: string;
}

const ISSUER = "https://idp.example";
const AUDIENCE = "dohost-tests";

async function createApp(server: TestServer, name: string): Promise<CreatedApp> {
  const res = await server.api("POST", "/v1/apps", { name });
  assert.equal(res.status, 200);
  return await res.json();
}

async function deployTo(
  server: TestServer,
  app: CreatedApp,
  name: string,
  accessMode: string,
): Promise<void> {
  const res = await server.api("POST", `/v1/${app.app_id}/durable-objects`, {
    name,
    code: await fixture("conformance_do.ts"),
    access_mode: accessMode,
  });
  assert.equal((await res.json()).status, "READY");
}

/** An in-process data-plane request to `app`; the URL's host selects the app. */
async function call(server: TestServer, app: CreatedApp, path: string, token?: string) {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const res = await server.server.handler(
    new Request(`http://${app.subdomain}.localhost${path}`, { headers }),
  );
  return { status: res.status, text: await res.text() };
}

function liveClasses(server: TestServer): string[] {
  return [...server.server.deps.instances.live].map((instance) => instance.target.record.name);
}

async function signer(alg: "RS256" | "ES256" | "EdDSA", kid: string) {
  const { privateKey, publicKey } = await generateKeyPair(
    alg,
    alg === "EdDSA" ? { crv: "Ed25519" } : {},
  );
  const jwk: JWK = { ...await exportJWK(publicKey), kid, alg, use: "sig" };
  const sign = (claims: Record<string, unknown>, edit?: (jwt: SignJWT) => SignJWT) => {
    let jwt = new SignJWT({ sub: "user-1", ...claims })
      .setProtectedHeader({ alg, kid })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime("5m");
    if (edit) jwt = edit(jwt);
    return jwt.sign(privateKey);
  };
  return { jwk, sign };
}

Deno.test("authenticated classes verify RS256, ES256 and EdDSA tokens against the app's JWKS with iss/aud checks", async () => {
  await using server = await startServer();
  const demo = await createApp(server, "demo");
  const other = await createApp(server, "other");
  await deployTo(server, demo, "auth", "authenticated");
  const rsa = await signer("RS256", "r1");
  const ec = await signer("ES256", "e1");
  const ed = await signer("EdDSA", "d1");
  const stranger = await signer("RS256", "r1");

  const patch = (app: CreatedApp, jwt: unknown, token = server.adminToken) =>
    server.api("PATCH", `/v1/apps/${app.app_id}`, { jwt }, token);
  // Only the app itself (or the admin) may change it.
  assert.equal((await patch(demo, { issuer: "x" }, other.service_key)).status, 404);
  const res = await patch(demo, {
    jwks: { keys: [rsa.jwk, ec.jwk, ed.jwk] },
    issuer: ISSUER,
    audience: AUDIENCE,
  }, demo.service_key);
  assert.equal(res.status, 200);
  const view = await res.json();
  assert.equal(view.jwt.mode, "jwks");
  assert.equal(view.jwt.issuer, ISSUER);
  assert.deepEqual(view.jwt.audience, [AUDIENCE]);
  assert.equal("jwt_secret" in view, false, "the JWT secret is never returned");

  const now = Math.floor(Date.now() / 1000);
  const hs256 = await new SignJWT({ sub: "u" }).setProtectedHeader({ alg: "HS256" })
    .setIssuer(ISSUER).setAudience(AUDIENCE).sign(new TextEncoder().encode(demo.jwt_secret));
  const refused: [string, string][] = [
    ["wrong issuer", await rsa.sign({}, (jwt) => jwt.setIssuer("https://evil.example"))],
    ["wrong audience", await ec.sign({}, (jwt) => jwt.setAudience("someone-else"))],
    ["expired", await ed.sign({}, (jwt) => jwt.setExpirationTime(now - 60))],
    ["not yet valid", await rsa.sign({}, (jwt) => jwt.setNotBefore(now + 3600))],
    ["unknown key with a known kid", await stranger.sign({})],
    ["HS256 with the app secret (JWKS mode)", hs256],
    ["alg none", `${btoa('{"alg":"none"}')}.${btoa(`{"iss":"${ISSUER}"}`)}.`],
    ["malformed", "a.b.c"],
  ];
  for (const [label, token] of refused) {
    assert.deepEqual(await call(server, demo, "/_do/auth/x/mem", token), {
      status: 401,
      text: "unauthorized",
    }, label);
  }
  assert.deepEqual(liveClasses(server), [], "no refused token woke an instance");
  for (const { sign } of [rsa, ec, ed]) {
    assert.equal((await call(server, demo, "/_do/auth/x/id", await sign({}))).status, 200);
  }

  // Invalid settings are refused and change nothing.
  const privateJwk = { ...rsa.jwk, d: "AAAA" };
  for (
    const jwt of [
      { jwks: { keys: [privateJwk] } },
      { jwks_url: "https://idp.example/jwks.json" },
      { jwks: null, jwks_url: "file:///etc/passwd" },
      { jwks: { keys: [] } },
      { audience: [] },
    ]
  ) {
    const bad = await patch(demo, jwt);
    assert.equal(bad.status, 400, JSON.stringify(jwt));
    assert.equal((await bad.json()).error.reason, "INVALID_JWT_SETTINGS");
  }
  // Clearing the JWKS brings back HS256 with the app's secret.
  const cleared = await (await patch(demo, { jwks: null, issuer: null, audience: null })).json();
  assert.equal(cleared.jwt.mode, "hs256");
  assert.equal((await call(server, demo, "/_do/auth/x/id", hs256)).status, 200);
});

Deno.test("a JWKS URL is fetched under the outbound policy and cached", async () => {
  const rsa = await signer("RS256", "k1");
  let fetches = 0;
  await using idp = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    fetches++;
    return Response.json({ keys: [rsa.jwk] });
  });
  const jwksUrl = `http://127.0.0.1:${idp.addr.port}/.well-known/jwks.json`;
  const token = await rsa.sign({});

  // The default policy refuses loopback, also for the server's own JWKS fetches.
  {
    await using server = await startServer();
    const demo = await createApp(server, "demo");
    await deployTo(server, demo, "auth", "authenticated");
    const res = await server.api("PATCH", `/v1/apps/${demo.app_id}`, {
      jwt: { jwks_url: jwksUrl, issuer: ISSUER },
    });
    assert.equal((await res.json()).jwt.mode, "jwks_url");
    assert.equal((await call(server, demo, "/_do/auth/x/id", token)).status, 401);
    assert.equal(fetches, 0);
  }
  // An allow-list naming the identity provider lets it through.
  await using server = await startServer({ flags: ["--outbound", `127.0.0.1:${idp.addr.port}`] });
  const demo = await createApp(server, "demo");
  await deployTo(server, demo, "auth", "authenticated");
  await server.api("PATCH", `/v1/apps/${demo.app_id}`, {
    jwt: { jwks_url: jwksUrl, audience: [AUDIENCE, "another"] },
  });
  assert.equal((await call(server, demo, "/_do/auth/x/id", token)).status, 200);
  assert.equal((await call(server, demo, "/_do/auth/y/id", token)).status, 200);
  assert.equal(fetches, 1, "the key set is cached");
  assert.equal((await call(server, demo, "/_do/auth/x/id", "garbage")).status, 401);
});

Deno.test("service keys: create, list by prefix, revoke; keys are hashed and never reach another app", async () => {
  await using server = await startServer();
  const demo = await createApp(server, "demo");
  const other = await createApp(server, "other");
  await deployTo(server, demo, "svc", "service_key");
  const k0 = demo.service_key;

  const created = await server.api("POST", `/v1/apps/${demo.app_id}/keys`, { name: "ci" }, k0);
  assert.equal(created.status, 200);
  const k1 = await created.json();
  assert.match(k1.service_key, /^bb_sk_[0-9a-f]{48}$/);
  assert.equal(k1.prefix, k1.service_key.slice(0, 12));
  const listed =
    await (await server.api("GET", `/v1/apps/${demo.app_id}/keys`, undefined, k1.service_key))
      .json();
  assert.deepEqual(listed.keys.map((key: { name: string }) => key.name), ["initial", "ci"]);
  for (const key of listed.keys) {
    assert.deepEqual(Object.keys(key).sort(), ["created_at", "key_id", "name", "prefix"]);
  }
  const initial = listed.keys[0];
  assert.equal(initial.prefix, k0.slice(0, 12));

  // Both keys work until one is revoked.
  assert.equal((await call(server, demo, "/_do/svc/x/mem", k0)).status, 200);
  assert.equal((await call(server, demo, "/_do/svc/x/mem", k1.service_key)).status, 200);
  const revoked = await server.api(
    "DELETE",
    `/v1/apps/${demo.app_id}/keys/${initial.key_id}`,
    undefined,
    k1.service_key,
  );
  assert.deepEqual(await revoked.json(), { revoked: true, key_id: initial.key_id });
  assert.deepEqual(await call(server, demo, "/_do/svc/x/mem", k0), {
    status: 401,
    text: "unauthorized",
  });
  const oldKey = await server.api("GET", `/v1/${demo.app_id}/durable-objects`, undefined, k0);
  assert.equal(oldKey.status, 401);
  assert.equal((await oldKey.json()).error.code, "AUTH_INVALID_API_KEY");
  assert.equal((await call(server, demo, "/_do/svc/x/mem", k1.service_key)).status, 200);
  const again = await server.api("DELETE", `/v1/apps/${demo.app_id}/keys/${initial.key_id}`);
  assert.equal(again.status, 404);

  // An app's key never touches another app, and is not the admin token.
  const foreign: [string, string][] = [
    ["GET", `/v1/${other.app_id}/durable-objects`],
    ["GET", `/v1/apps/${other.app_id}`],
    ["GET", `/v1/apps/${other.app_id}/keys`],
    ["POST", `/v1/apps/${other.app_id}/keys`],
    ["PATCH", `/v1/apps/${other.app_id}`],
  ];
  for (const [method, path] of foreign) {
    const res = await server.api(method, path, method === "GET" ? undefined : {}, k1.service_key);
    assert.equal(res.status, 404, `${method} ${path}`);
    await res.body?.cancel();
  }
  const asAdmin = await server.api("POST", "/v1/apps", { name: "sneaky" }, k1.service_key);
  assert.equal(asAdmin.status, 403);
  await asAdmin.body?.cancel();
  assert.equal((await call(server, demo, "/_do/svc/x/mem", server.adminToken)).status, 401);

  // Only hashes are stored: no key appears in the database files.
  await server.stop();
  const meta = join(server.dataDir, "meta.sqlite");
  const db = new DatabaseSync(meta, { readOnly: true });
  const hashes = db.prepare("SELECT hash FROM service_keys").all().map((row) => String(row.hash));
  db.close();
  assert.equal(hashes.length, 2 + 1, "demo's remaining key, other's and app_default's");
  for (const file of [meta, `${meta}-wal`]) {
    const bytes = await Deno.readFile(file).catch(() => new Uint8Array());
    const raw = new TextDecoder("latin1").decode(bytes);
    for (const key of [k0, k1.service_key, other.service_key]) {
      assert.equal(raw.includes(key.slice(6)), false, `${file} holds a key`);
    }
  }
});

const ECHO = `
import { DurableObject } from "cloudflare:workers";
export class Echo extends DurableObject {
  async fetch() {
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.addEventListener("message", (event) => server.send("echo " + event.data));
    return new Response(null, { status: 101, webSocket: client });
  }
}`;

Deno.test("revoking a service key does not drop a socket it authorised, but refuses new ones", async () => {
  await using server = await startServer();
  await server.deploy("echo", ECHO, "service_key");
  const created = await server.api("POST", "/v1/apps/app_default/keys", { name: "rotating" });
  const key = await created.json();
  await using socket = await WsClient.open(server, `/_do/echo/room?token=${key.service_key}`);
  socket.send("one");
  assert.equal(await socket.text(), "echo one");
  const revoked = await server.api("DELETE", `/v1/apps/app_default/keys/${key.key_id}`);
  assert.equal(revoked.status, 200);
  await revoked.body?.cancel();
  socket.send("two");
  assert.equal(await socket.text(), "echo two", "the open socket carries on");
  await assert.rejects(WsClient.open(server, `/_do/echo/room?token=${key.service_key}`));
});
