/**
 * Escape attempts written as hostile Durable Object classes (`fixtures/hostile_do.ts`): each
 * must fail, and the server and the other instances must carry on unaffected.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fixture, startServer, type TestServer } from "../_helpers.ts";

interface Attempt {
  escaped: boolean;
  error?: string;
  value?: string;
}

async function attempt(
  server: TestServer,
  instance: string,
  name: string,
  params: Record<string, string> = {},
): Promise<Attempt> {
  const query = new URLSearchParams(params).toString();
  const res = await server.fetch(`/_do/hostile/${instance}/${name}${query ? `?${query}` : ""}`);
  assert.equal(res.status, 200, `${name}: status ${res.status}`);
  return JSON.parse(await res.text());
}

async function assertBlocked(
  server: TestServer,
  name: string,
  params: Record<string, string> = {},
  instance = "attacker",
): Promise<string> {
  const result = await attempt(server, instance, name, params);
  assert.equal(result.escaped, false, `${name} escaped: ${result.value}`);
  return result.error ?? "";
}

async function assertHealthy(server: TestServer): Promise<void> {
  assert.deepEqual(await (await server.fetch("/healthz")).json(), { ok: true });
  const counted = await server.fetch("/_do/counter/bystander", { method: "POST" });
  assert.equal(counted.status, 200);
  assert.equal((await counted.json()).name, "bystander");
  assert.equal(await (await server.fetch("/_do/hostile/attacker/ok")).text(), "ok");
}

Deno.test("sandbox: hostile objects cannot reach files, env, processes, FFI or the host", async () => {
  await using server = await startServer();
  await server.deploy("hostile", await fixture("hostile_do.ts"));
  await server.deploy("counter", await fixture("counter.ts"));
  const secretFile = join(server.dataDir, "admin_token");

  assert.match(await assertBlocked(server, "read-passwd"), /Deno is not defined|undefined/);
  await assertBlocked(server, "read-data-dir", { path: secretFile });
  await assertBlocked(server, "read-via-process");
  await assertBlocked(server, "env-deno");
  await assertBlocked(server, "env-process");
  await assertBlocked(server, "command");
  await assertBlocked(server, "dynamic-import");
  await assertBlocked(server, "require-child-process");
  await assertBlocked(server, "ffi");
  await assertBlocked(server, "spawn-worker");
  await assertBlocked(server, "write-outside");
  await assert.rejects(Deno.stat("/tmp/dohost-escape.txt"), Deno.errors.NotFound);
  await assertBlocked(server, "post-to-host");
  await assertBlocked(server, "close-worker");
  await assertBlocked(server, "node-bootstrap");
  await assertBlocked(server, "deno-internal");
  await assertHealthy(server);
});

Deno.test("sandbox: code generation from strings is disabled in objects", async () => {
  await using server = await startServer();
  await server.deploy("hostile", await fixture("hostile_do.ts"));
  await server.deploy("counter", await fixture("counter.ts"));
  for (
    const name of [
      "codegen-constructor",
      "codegen-eval",
      "codegen-function",
      "codegen-async-function",
      "codegen-timer-string",
    ]
  ) {
    await assertBlocked(server, name);
  }
  await assertHealthy(server);
});

Deno.test("sandbox: SQL cannot attach, copy out or lift the storage cap", async () => {
  await using server = await startServer();
  await server.deploy("hostile", await fixture("hostile_do.ts"));
  await server.deploy("counter", await fixture("counter.ts"));
  // Another instance's database, and a file outside every instance directory.
  await (await server.fetch("/_do/counter/victim", { method: "POST" })).text();
  const victim = join(server.dataDir, "instances", "app_default", "counter");
  const [victimFile] = [...Deno.readDirSync(victim)].map((entry) => join(victim, entry.name));
  const outside = join(server.dataDir, "stolen.sqlite");
  assert.ok(victimFile);
  await assertBlocked(server, "sql-attach", { path: victimFile });
  await assertBlocked(server, "sql-attach", { path: outside });
  await assertBlocked(server, "sql-vacuum-into", { path: outside });
  await assertBlocked(server, "sql-max-page-count");
  await assert.rejects(Deno.stat(outside), Deno.errors.NotFound);
  await assertHealthy(server);
});

Deno.test("sandbox: fetch reaches neither files, loopback, private ranges nor the control API", async () => {
  await using server = await startServer();
  await server.deploy("hostile", await fixture("hostile_do.ts"));
  await server.deploy("counter", await fixture("counter.ts"));
  const port = new URL(server.url).port;
  assert.match(
    await assertBlocked(server, "fetch", { u: "file:///etc/passwd" }),
    /only http: and https: URLs/,
  );
  const targets = [
    `${server.url}/healthz`,
    `http://localhost:${port}/healthz`,
    `http://[::1]:${port}/healthz`,
    `http://[::ffff:127.0.0.1]:${port}/healthz`,
    `http://2130706433:${port}/healthz`,
    `http://0.0.0.0:${port}/healthz`,
    "http://10.1.2.3/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
  ];
  for (const u of targets) {
    const error = await assertBlocked(server, "fetch", { u });
    assert.match(error, /outbound policy|blocked|not allowed/, `${u}: ${error}`);
  }
  // The admin API, even with the admin token in hand.
  await assertBlocked(server, "fetch", { u: `${server.url}/v1/apps`, token: server.adminToken });
  await assertBlocked(server, "websocket", { u: `ws://127.0.0.1:${port}/_do/counter/x` });
  await assertBlocked(server, "event-source");
  await assertHealthy(server);
});

Deno.test("sandbox: with --outbound all, objects still cannot call the control API", async () => {
  await using server = await startServer({ flags: ["--outbound", "all"] });
  await server.deploy("hostile", await fixture("hostile_do.ts"));
  await server.deploy("counter", await fixture("counter.ts"));
  const reached = await attempt(server, "attacker", "fetch", { u: `${server.url}/healthz` });
  assert.deepEqual(reached, { escaped: true, value: '200 {"ok":true}' });
  const admin = await attempt(server, "attacker", "fetch", {
    u: `${server.url}/v1/apps`,
    token: server.adminToken,
  });
  assert.equal(admin.escaped, true);
  assert.match(admin.value ?? "", /^403 .*cannot call the control API/);
  await assertHealthy(server);
});

Deno.test("sandbox: prototype tampering stays inside the tampering instance", async () => {
  await using server = await startServer();
  await server.deploy("hostile", await fixture("hostile_do.ts"));
  await server.deploy("counter", await fixture("counter.ts"));
  await assertBlocked(server, "see-pollution", {}, "victim");
  const polluted = await attempt(server, "attacker", "pollute");
  assert.deepEqual(polluted, { escaped: true, value: "polluted" }, "the answer still arrived");
  assert.equal((await attempt(server, "attacker", "see-pollution")).escaped, true);
  await assertBlocked(server, "see-pollution", {}, "victim");
  // Host messages (other requests) are never visible to user listeners.
  await assertBlocked(server, "host-messages", {}, "victim");
  await assertBlocked(server, "host-messages", {}, "victim");
  await assertHealthy(server);
});

Deno.test("sandbox: imports other than cloudflare:workers are refused at deploy time", async () => {
  await using server = await startServer();
  const sources = [
    'import fs from "node:fs";\nexport class A { fetch() { return new Response(fs.readFileSync("/etc/passwd")); } }',
    'export class A { async fetch() { const m = await import("node:child_process"); return new Response(String(m)); } }',
    'export class A { fetch() { return new Response(require("fs").readFileSync("/etc/passwd")); } }',
    'import "https://example.com/x.js";\nexport class A {}',
    'export class A { async fetch() { return new Response(String(await import("file:///etc/passwd"))); } }',
  ];
  for (const code of sources) {
    const res = await server.api("POST", "/v1/app_default/durable-objects", {
      name: "importer",
      code,
      access_mode: "public",
    });
    const body = await res.json();
    assert.equal(res.status, 400, code);
    assert.equal(body.error.reason, "DISALLOWED_IMPORT", code);
  }
});
