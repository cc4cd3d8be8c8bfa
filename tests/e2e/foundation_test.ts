import assert from "node:assert/strict";
import { fixture, getJson, startServer } from "../_helpers.ts";

Deno.test("data plane: a deployed class answers, keeps state per id, and persists storage", async () => {
  await using server = await startServer();
  await server.deploy("counter", await fixture("counter.ts"));
  const first = await getJson(server, "/_do/counter/a/extra?x=1", { method: "POST" });
  assert.equal(first.status, 200);
  assert.deepEqual(first.body, { value: 1, name: "a", path: "/_do/counter/a/extra" });
  assert.deepEqual((await getJson(server, "/_do/counter/a", { method: "POST" })).body, {
    value: 2,
    name: "a",
    path: "/_do/counter/a",
  });
  assert.deepEqual((await getJson(server, "/_do/counter/b")).body, { value: 0 });
});

Deno.test("data plane: 64 concurrent increments on one instance lose no update", async () => {
  await using server = await startServer();
  await server.deploy("counter", await fixture("counter.ts"));
  const results = await Promise.all(
    Array.from({ length: 64 }, () => getJson(server, "/_do/counter/hot", { method: "POST" })),
  );
  const values = results.map((r) => (r.body as { value: number }).value).sort((a, b) => a - b);
  assert.deepEqual(values, Array.from({ length: 64 }, (_, i) => i + 1));
  assert.deepEqual((await getJson(server, "/_do/counter/hot")).body, { value: 64 });
});

Deno.test("data plane: storage survives a restart, and redeploy resets memory but keeps storage", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "dohost-test-" });
  try {
    {
      await using server = await startServer({ dataDir });
      await server.deploy("conformance-do", await fixture("conformance_do.ts"));
      assert.equal(
        (await getJson(server, "/_do/conformance-do/r/kv?k=a&v=1", { method: "PUT" })).status,
        200,
      );
      assert.equal((await getJson(server, "/_do/conformance-do/r/mem")).body, 1);
      assert.equal((await getJson(server, "/_do/conformance-do/r/mem")).body, 2);
      const hex = (await getJson(server, "/_do/conformance-do/r/id")).body;
      await server.deploy("conformance-do", await fixture("conformance_do.ts"));
      assert.equal((await getJson(server, "/_do/conformance-do/r/mem")).body, 1, "memory reset");
      assert.equal((await getJson(server, "/_do/conformance-do/r/kv?k=a")).body, 1);
      await server.stop();
      await using again = await startServer({ dataDir });
      assert.equal((await getJson(again, "/_do/conformance-do/r/kv?k=a")).body, 1);
      assert.deepEqual((await getJson(again, "/_do/conformance-do/r/id")).body, hex);
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("data plane: an uncaught exception is a 500 for that request only", async () => {
  await using server = await startServer();
  await server.deploy("conformance-do", await fixture("conformance_do.ts"));
  assert.equal((await getJson(server, "/_do/conformance-do/e/mem")).body, 1);
  const res = await server.fetch("/_do/conformance-do/e/throw");
  assert.equal(res.status, 500);
  assert.equal(await res.text(), "Internal Server Error");
  assert.equal(res.headers.get("x-dohost-error"), "USER_EXCEPTION");
  assert.equal((await getJson(server, "/_do/conformance-do/e/mem")).body, 2, "instance kept");
});

Deno.test("data plane: unknown classes, bad paths and unknown subdomains are plain-text 404s", async () => {
  await using server = await startServer();
  const unknown = await server.fetch("/_do/nope/x");
  assert.equal(unknown.status, 404);
  assert.equal(await unknown.text(), "unknown DO");
  const short = await server.fetch("/_do/nope");
  assert.equal(short.status, 404);
  assert.equal(await short.text(), "not found");
  const sub = await server.server.handler(
    new Request("http://ghost.localhost/_do/nope/x", { headers: { host: "ghost.localhost" } }),
  );
  assert.equal(sub.status, 404);
  assert.equal(await sub.text(), 'No app for subdomain "ghost"');
});

Deno.test("healthz answers ok", async () => {
  await using server = await startServer();
  const res = await server.fetch("/healthz");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true });
});
