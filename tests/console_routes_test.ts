import assert from "node:assert/strict";
import { fixture, startServer } from "./_helpers.ts";

Deno.test("the console page and assets are served from the binary with a strict CSP", async () => {
  await using server = await startServer();
  const redirect = await server.fetch("/_console", { redirect: "manual" });
  assert.equal(redirect.status, 301);
  assert.equal(redirect.headers.get("location"), "/_console/");
  await redirect.body?.cancel();

  const page = await server.fetch("/_console/");
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
  assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
  const html = await page.text();
  assert.match(html, /<meta name="dohost-domain" content="localhost">/);
  const script = /src="app\.js\?v=([0-9a-f]+)"/.exec(html);
  assert.ok(script, "the page loads the versioned script");

  const js = await server.fetch(`/_console/app.js?v=${script[1]}`);
  assert.match(js.headers.get("content-type") ?? "", /^text\/javascript/);
  assert.match(js.headers.get("cache-control") ?? "", /immutable/);
  assert.ok((await js.text()).length > 1000);
  const css = await server.fetch("/_console/app.css");
  assert.match(css.headers.get("content-type") ?? "", /^text\/css/);
  await css.body?.cancel();
});

Deno.test("the try-it relay reaches the app's data plane with the console token", async () => {
  await using server = await startServer();
  const created = await (await server.api("POST", "/v1/apps", { name: "relay" })).json();
  const other = await (await server.api("POST", "/v1/apps", { name: "other" })).json();
  const deployed = await server.api("POST", `/v1/${created.app_id}/durable-objects`, {
    name: "notes",
    code: await fixture("console_notes_do.ts"),
    access_mode: "public",
  });
  assert.equal((await deployed.json()).status, "READY");
  const relay = `/_console/try/${created.app_id}/_do/notes/room`;

  const anonymous = await server.fetch(relay, { method: "POST", body: "x" });
  assert.equal(anonymous.status, 401);
  await anonymous.body?.cancel();
  const foreign = await server.fetch(relay, {
    method: "POST",
    body: "x",
    headers: { "x-dohost-console-token": other.service_key },
  });
  assert.equal(foreign.status, 404);
  assert.equal((await foreign.json()).error.message, "App not found");

  const stored = await server.fetch(relay, {
    method: "POST",
    body: "via relay",
    headers: { "x-dohost-console-token": created.service_key, cookie: "session=secret" },
  });
  assert.equal(stored.status, 200);
  assert.equal(stored.headers.get("content-security-policy"), "sandbox");
  assert.deepEqual(await stored.json(), { stored: "via relay", count: 1 });

  // The same instance as a request on the app's own host.
  const direct = await server.server.handler(
    new Request(`http://${created.subdomain}.localhost/_do/notes/room`),
  );
  assert.deepEqual(await direct.json(), { text: "via relay", count: 1 });

  const upgrade = await server.fetch(relay, {
    headers: { "x-dohost-console-token": created.service_key, upgrade: "websocket" },
  });
  assert.equal(upgrade.status, 400);
  assert.equal((await upgrade.json()).error.reason, "WEBSOCKET_NOT_RELAYED");

  // app_default is reached on the bare domain; its class "notes" does not exist.
  const fallback = await server.fetch("/_console/try/app_default/_do/notes/room", {
    headers: { "x-dohost-console-token": server.adminToken },
  });
  assert.equal(fallback.status, 404);
  assert.equal(await fallback.text(), "unknown DO");
});
