/**
 * Resource limits: CPU per event, memory per instance, live instances per server, request
 * body size and storage per instance. Each gives a clear error and leaves the server and the
 * other instances working.
 */

import assert from "node:assert/strict";
import { fixture, startServer, type TestServer } from "../_helpers.ts";
import { WsClient } from "./_ws_client.ts";

async function deployWith(
  server: TestServer,
  name: string,
  limits: Record<string, number> | undefined,
): Promise<Response> {
  return await server.api("POST", "/v1/app_default/durable-objects", {
    name,
    code: await fixture("limits_do.ts"),
    access_mode: "public",
    limits,
  });
}

async function text(server: TestServer, path: string, init?: RequestInit): Promise<string> {
  const res = await server.fetch(path, init);
  assert.equal(res.status, 200, path);
  return await res.text();
}

async function failure(res: Response): Promise<{ status: number; code: string | null }> {
  await res.body?.cancel();
  return { status: res.status, code: res.headers.get("x-dohost-error") };
}

/** Waits (polling the instance table) until `count` events are in flight on `name`s. */
async function untilPending(server: TestServer, names: string[]): Promise<void> {
  for (;;) {
    const live = [...server.server.deps.instances.live];
    const busy = names.every((name) =>
      live.some((instance) => instance.target.name === name && instance.host.pending > 0)
    );
    if (busy) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("limits: a while (true) instance is reset with CPU_LIMIT_EXCEEDED while others answer", async () => {
  await using server = await startServer({ flags: ["--cpu-limit-ms", "2000"] });
  await server.deploy("limits", await fixture("limits_do.ts"));
  assert.equal(await text(server, "/_do/limits/other/ok"), "ok");
  let settled = false;
  const stuck = server.fetch("/_do/limits/stuck/spin").finally(() => settled = true);
  await untilPending(server, ["stuck"]);
  assert.equal(await text(server, "/_do/limits/other/ok"), "ok");
  assert.equal(settled, false, "the other instance answered while the stuck one spun");
  assert.deepEqual(await failure(await stuck), { status: 503, code: "CPU_LIMIT_EXCEEDED" });
  assert.equal(await text(server, "/_do/limits/stuck/ok"), "ok", "the next request starts afresh");
  assert.deepEqual(await (await server.fetch("/healthz")).json(), { ok: true });
});

Deno.test("limits: a WebSocket message handler stuck in while (true) hits the CPU limit too", async () => {
  await using server = await startServer({ flags: ["--cpu-limit-ms", "300"] });
  await server.deploy("limits", await fixture("limits_do.ts"));
  await using socket = await WsClient.open(server, "/_do/limits/ws/socket");
  socket.send("hello");
  assert.equal(await socket.text(), "echo hello");
  socket.send("spin");
  const closed = await socket.closeEvent();
  assert.equal(closed.code, 1011);
  assert.equal(await text(server, "/_do/limits/ws/ok"), "ok", "the instance starts afresh");
});

Deno.test("limits: a class's limits.cpu_ms lowers the CPU limit; it cannot raise it", async () => {
  await using server = await startServer({ flags: ["--cpu-limit-ms", "5000"] });
  assert.equal((await (await deployWith(server, "tight", { cpu_ms: 150 })).json()).status, "READY");
  assert.deepEqual(
    await failure(await server.fetch("/_do/tight/a/spin")),
    { status: 503, code: "CPU_LIMIT_EXCEEDED" },
  );
  const tooHigh = await deployWith(server, "greedy", { cpu_ms: 6000 });
  assert.equal(tooHigh.status, 400);
  assert.equal((await tooHigh.json()).error.reason, "INVALID_LIMITS");
});

Deno.test("limits: an instance that allocates without bound is stopped, not the server", async () => {
  await using server = await startServer({ flags: ["--memory-limit-mb", "48"] });
  await server.deploy("limits", await fixture("limits_do.ts"));
  assert.equal(
    (await (await deployWith(server, "small", { memory_mb: 24 })).json()).status,
    "READY",
  );
  for (const path of ["/_do/limits/hog/alloc", "/_do/small/hog/alloc"]) {
    assert.deepEqual(
      await failure(await server.fetch(path)),
      { status: 503, code: "MEMORY_LIMIT_EXCEEDED" },
      path,
    );
  }
  assert.equal(await text(server, "/_do/limits/hog/ok"), "ok");
  assert.equal(await text(server, "/_do/small/bystander/ok"), "ok");
  const tooHigh = await deployWith(server, "greedy", { memory_mb: 64 });
  assert.equal((await tooHigh.json()).error.reason, "INVALID_LIMITS");
});

Deno.test("limits: ArrayBuffers count toward the memory limit; the hoarder is reset, its storage kept", async () => {
  await using server = await startServer({ flags: ["--memory-limit-mb", "64"] });
  await server.deploy("limits", await fixture("limits_do.ts"));
  assert.equal(await text(server, "/_do/limits/bystander/ok"), "ok");
  // 20 MB of buffers more per request: the V8 heap cap alone never trips (they are off-heap).
  let answered = 0;
  let last = await server.fetch("/_do/limits/hoarder/hoard");
  while (last.status === 200 && answered < 10) {
    assert.equal(await last.text(), String(++answered));
    last = await server.fetch("/_do/limits/hoarder/hoard");
  }
  assert.deepEqual(await failure(last), { status: 503, code: "MEMORY_LIMIT_EXCEEDED" });
  assert.ok(answered >= 1 && answered <= 3, `stopped after ${answered} × 20 MB under 64 MB`);
  assert.equal(await text(server, "/_do/limits/bystander/ok"), "ok", "the other instance answers");
  const { held, stored } = JSON.parse(await text(server, "/_do/limits/hoarder/hoarded"));
  assert.equal(held, 0, "the next request got a fresh instance");
  // The failed turn's write may or may not have committed before the check stopped it.
  assert.ok(stored === answered || stored === answered + 1, `storage kept: ${stored}`);
  const metrics = await (await server.api("GET", "/metrics")).text();
  assert.match(
    metrics,
    /dohost_instance_memory_stops_total\{app="app_default",class="limits",cause="instance"\} 1/,
  );
});

Deno.test("limits: --max-instances evicts the least recently used idle instance, or refuses when all are busy", async () => {
  await using server = await startServer({
    flags: ["--max-instances", "2", "--max-body-bytes", "1024"],
  });
  await server.deploy("limits", await fixture("limits_do.ts"));
  const a = server.fetch("/_do/limits/a/hold");
  const b = server.fetch("/_do/limits/b/hold");
  await untilPending(server, ["a", "b"]);
  assert.deepEqual(
    await failure(await server.fetch("/_do/limits/c/ok")),
    { status: 503, code: "MAX_INSTANCES_EXCEEDED" },
  );
  assert.equal(await text(server, "/_do/limits/a/release"), "1");
  assert.equal(await (await a).text(), "released");
  assert.equal(await text(server, "/_do/limits/c/ok"), "ok");
  const live = [...server.server.deps.instances.live].map((instance) => instance.target.name);
  assert.deepEqual(live.sort(), ["b", "c"], "a, idle and least recently used, was stopped");
  assert.equal(await text(server, "/_do/limits/b/release"), "1");
  assert.equal(await (await b).text(), "released");

  // Request bodies over --max-body-bytes are refused before any instance sees them.
  const big = await server.fetch("/_do/limits/a/ok", { method: "POST", body: "x".repeat(2048) });
  assert.equal(big.status, 413);
  assert.equal(await big.text(), "payload too large: limit is 1024 bytes");
});

Deno.test("limits: a write past --max-storage-bytes fails the request with 507 STORAGE_LIMIT_EXCEEDED", async () => {
  await using server = await startServer({ flags: ["--max-storage-bytes", "1048576"] });
  await server.deploy("limits", await fixture("limits_do.ts"));
  // The write throws an error naming the limit (see storage_limit_test.ts); SQLite rolls the
  // turn back and, as on Cloudflare, the request fails even though the object caught it.
  for (const path of ["/_do/limits/sql/fill", "/_do/limits/kv/fill-kv"]) {
    assert.deepEqual(await failure(await server.fetch(path)), {
      status: 507,
      code: "STORAGE_LIMIT_EXCEEDED",
    });
  }
  const logs = await server.api("GET", "/v1/app_default/durable-objects/limits/logs");
  const caught = ((await logs.json()) as { logs: { message: string }[] }).logs
    .map((entry) => entry.message).filter((message) => message.includes("caught"));
  const limit = "Durable Object storage limit of 1048576 bytes exceeded: SQLITE_FULL";
  assert.deepEqual(caught, [`fill caught: ${limit}`, `fill-kv caught: ${limit}`]);
  assert.ok(Number(await text(server, "/_do/limits/sql/size")) <= 1_048_576);
  assert.equal(await text(server, "/_do/limits/kv/ok"), "ok", "the instance starts again");
});
