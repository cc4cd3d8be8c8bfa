import assert from "node:assert/strict";
import { fixture, getJson, startServer, type TestServer } from "../_helpers.ts";
import { WsClient } from "./_ws_client.ts";

const BASE = "/v1/app_default/durable-objects/inspect-do";

async function setup(server: TestServer): Promise<void> {
  await server.deploy("inspect-do", await fixture("inspect_do.ts"));
}

async function call(server: TestServer, path: string): Promise<unknown> {
  const { status, body } = await getJson(server, `/_do/inspect-do/${path}`, { method: "POST" });
  assert.equal(status, 200, `${path}: ${JSON.stringify(body)}`);
  return body;
}

async function api(
  server: TestServer,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await server.api(method, `${BASE}${path}`, body);
  return { status: res.status, body: await res.json() };
}

interface Row {
  id: string;
  name: string | null;
  state: string;
  storage_bytes: number;
  alarm: string | null;
  sockets: number;
  last_active: string | null;
}

Deno.test("GET …/instances lists live instances, then stopped ones after a restart", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "dohost-test-" });
  try {
    {
      await using server = await startServer({ dataDir });
      await setup(server);
      await call(server, "lobby/fill?n=2");
      const at = Date.parse("2100-01-01T00:00:00.000Z");
      await call(server, `lobby/alarm?at=${at}`);
      await call(server, "room%2F7/put?k=a&v=1");
      const { status, body } = await api(server, "GET", "/instances");
      assert.equal(status, 200);
      const rows = body.instances as Row[];
      assert.deepEqual(rows.map((row) => [row.name, row.state]).sort(), [
        ["lobby", "live"],
        ["room/7", "live"],
      ]);
      const lobby = rows.find((row) => row.name === "lobby");
      assert.ok(lobby);
      assert.match(lobby.id, /^[0-9a-f]{64}$/);
      assert.ok(lobby.storage_bytes > 0);
      assert.equal(lobby.alarm, "2100-01-01T00:00:00.000Z");
      assert.equal(lobby.sockets, 0);
      assert.ok(lobby.last_active);
    }
    await using again = await startServer({ dataDir });
    const { body } = await api(again, "GET", "/instances");
    const rows = body.instances as Row[];
    assert.deepEqual(rows.map((row) => [row.name, row.state]).sort(), [
      ["lobby", "stopped"],
      ["room/7", "stopped"],
    ]);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("GET …/instances/:id/storage pages keys with prefix, start and limit, decoding values", async () => {
  await using server = await startServer();
  await setup(server);
  await call(server, "lobby/fill?n=5");
  const all = await api(server, "GET", "/instances/lobby/storage");
  assert.equal(all.status, 200);
  const items = all.body.items as { key: string; type: string; value: unknown; size: number }[];
  const byKey = new Map(items.map((item) => [item.key, item]));
  assert.deepEqual(byKey.get("user")?.value, { name: "ada", tags: ["x", "y"] });
  assert.equal(byKey.get("user")?.type, "json");
  assert.equal(byKey.get("item:003")?.value, 3);
  assert.equal(byKey.get("when")?.type, "Date");
  assert.match(String(byKey.get("when")?.value), /1970-01-01T00:00:00\.000Z/);
  assert.equal(byKey.get("map")?.type, "Map");
  assert.match(String(byKey.get("map")?.value), /"a" => 1/);
  assert.equal(byKey.get("big")?.type, "bigint");
  assert.equal(byKey.get("big")?.value, "12345678901234567890n");
  assert.equal(all.body.next, null);

  const page = await api(server, "GET", "/instances/lobby/storage?prefix=item:&limit=2");
  assert.deepEqual((page.body.items as { key: string }[]).map((item) => item.key), [
    "item:000",
    "item:001",
  ]);
  assert.equal(page.body.next, "item:002");
  const next = await api(server, "GET", "/instances/lobby/storage?prefix=item:&start=item:004");
  assert.deepEqual((next.body.items as { key: string }[]).map((item) => item.key), ["item:004"]);
  assert.equal(next.body.next, null);

  const empty = await api(server, "GET", "/instances/never-used/storage");
  assert.deepEqual(empty.body.items, []);
});

Deno.test("POST …/instances/:id/sql runs read-only queries and refuses writes", async () => {
  await using server = await startServer();
  await setup(server);
  await call(server, "notes/sql?body=first");
  await call(server, "notes/sql?body=second");
  const read = await api(server, "POST", "/instances/notes/sql", {
    query: "SELECT id, body FROM notes WHERE id >= ? ORDER BY id",
    params: [1],
  });
  assert.equal(read.status, 200);
  assert.deepEqual(read.body, {
    columns: ["id", "body"],
    rows: [{ id: 1, body: "first" }, { id: 2, body: "second" }],
    truncated: false,
  });
  const write = await api(server, "POST", "/instances/notes/sql", {
    query: "INSERT INTO notes (body) VALUES ('x')",
  });
  assert.equal(write.status, 400);
  assert.equal((write.body.error as { reason: string }).reason, "READ_ONLY");
  const drop = await api(server, "POST", "/instances/notes/sql", { query: "DROP TABLE notes" });
  assert.equal(drop.status, 400);
  const bad = await api(server, "POST", "/instances/notes/sql", { query: "SELEC 1" });
  assert.equal(bad.status, 400);
  assert.equal((bad.body.error as { reason: string }).reason, "SQL_ERROR");
  const count = await api(server, "POST", "/instances/notes/sql", {
    query: "SELECT count(*) AS n FROM notes",
  });
  assert.deepEqual(count.body.rows, [{ n: 2 }]);
  const missing = await api(server, "POST", "/instances/nobody/sql", { query: "SELECT 1" });
  assert.equal(missing.status, 404);
});

Deno.test("export then import copies an instance's database; DELETE purges one instance", async () => {
  await using server = await startServer();
  await setup(server);
  await call(server, "source/put?k=greeting&v=hello");
  const exported = await server.api("GET", `${BASE}/instances/source/export`);
  assert.equal(exported.status, 200);
  assert.equal(exported.headers.get("content-type"), "application/vnd.sqlite3");
  const bytes = new Uint8Array(await exported.arrayBuffer());
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 15)), "SQLite format 3");

  await call(server, "target/put?k=greeting&v=old"); // live while it is replaced
  const imported = await fetch(`${server.url}${BASE}/instances/target/export`, {
    method: "PUT",
    headers: { authorization: `Bearer ${server.adminToken}` },
    body: bytes,
  });
  assert.equal(imported.status, 200, await imported.clone().text());
  assert.equal((await imported.json()).imported, true);
  assert.equal(await call(server, "target/get?k=greeting"), "hello");

  const junk = await fetch(`${server.url}${BASE}/instances/target/export`, {
    method: "PUT",
    headers: { authorization: `Bearer ${server.adminToken}` },
    body: "not a database",
  });
  assert.equal(junk.status, 400);
  await junk.body?.cancel();
  assert.equal(
    await call(server, "target/get?k=greeting"),
    "hello",
    "a bad import changes nothing",
  );

  const { body: list } = await api(server, "GET", "/instances");
  const target = (list.instances as Row[]).find((row) => row.name === "target");
  assert.ok(target);
  const deleted = await api(server, "DELETE", `/instances/${target.id}`);
  assert.deepEqual(deleted.body, { deleted: true, id: target.id, name: "target" });
  const { body: after } = await api(server, "GET", "/instances");
  assert.deepEqual((after.instances as Row[]).map((row) => row.name), ["source"]);
  assert.equal(await call(server, "target/get?k=greeting"), null, "a purged instance starts empty");
});

Deno.test("inspection routes accept the app's service key and 404 an unknown class", async () => {
  await using server = await startServer();
  await setup(server);
  await call(server, "a/put?k=x&v=1");
  const created = await server.api("POST", "/v1/apps", { name: "other" });
  const other = await created.json();
  const foreign = await server.api("GET", `/v1/${other.app_id}/durable-objects/x/instances`);
  assert.equal(foreign.status, 404);
  await foreign.body?.cancel();
  const ownKey = server.server.firstStart.defaultApp?.service_key;
  assert.ok(ownKey);
  const own = await server.api("GET", `${BASE}/instances/a/storage`, undefined, ownKey);
  assert.equal(own.status, 200);
  assert.deepEqual((await own.json()).items.map((item: { key: string }) => item.key), ["x"]);
  const wrongKey = await server.api("GET", `${BASE}/instances`, undefined, other.service_key);
  assert.equal(wrongKey.status, 404, "another app's key cannot see app_default");
  await wrongKey.body?.cancel();
  const unknown = await server.api("GET", "/v1/app_default/durable-objects/nope/instances");
  assert.equal(unknown.status, 404);
  await unknown.body?.cancel();
  const anonymous = await fetch(`${server.url}${BASE}/instances`);
  assert.equal(anonymous.status, 401);
  await anonymous.body?.cancel();
});

Deno.test("GET …/logs returns console output with app, class and instance, and follows it live", async () => {
  await using server = await startServer();
  await setup(server);
  await call(server, "lobby/log?m=one");
  const { body } = await api(server, "GET", "/logs");
  const logs = body.logs as { level: string; message: string; instance: string; app: string }[];
  assert.deepEqual(logs.map((entry) => [entry.level, entry.message, entry.instance, entry.app]), [
    ["info", "hello one", "lobby", "app_default"],
    ["warn", "careful", "lobby", "app_default"],
  ]);
  const limited = await api(server, "GET", "/logs?limit=1");
  assert.deepEqual((limited.body.logs as { message: string }[]).map((e) => e.message), [
    "careful",
  ]);

  const controller = new AbortController();
  const res = await fetch(`${server.url}${BASE}/logs?follow=1&limit=1`, {
    headers: { authorization: `Bearer ${server.adminToken}` },
    signal: controller.signal,
  });
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  assert.ok(res.body);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let text = "";
    const readUntil = async (needle: string) => {
      while (!text.includes(needle)) {
        const chunk = await reader.read();
        if (chunk.done) throw new Error(`stream ended before "${needle}"`);
        text += chunk.value;
      }
    };
    await readUntil("careful");
    await call(server, "other/log?m=two");
    await readUntil("hello two");
    const messages = text.split("\n")
      .filter((line) => line.startsWith("data: "))
      .map((line) => JSON.parse(line.slice(6)));
    assert.deepEqual(messages.slice(0, 2).map((entry) => [entry.message, entry.instance]), [
      ["careful", "lobby"],
      ["hello two", "other"],
    ]);
  } finally {
    controller.abort(); // an open stream would hold the server's shutdown
    await reader.cancel().catch(() => {});
  }
});

Deno.test("GET …/instances shows sockets and the hibernated state from the socket registry", async () => {
  await using server = await startServer();
  await server.deploy("conformance-ws", await fixture("conformance_ws.ts"));
  await using client = await WsClient.open(server, "/_do/conformance-ws/room/ws-hib");
  client.send("hi");
  assert.equal(await client.text(), "text:hi");
  const list = async () => {
    const res = await server.api("GET", "/v1/app_default/durable-objects/conformance-ws/instances");
    return (await res.json()).instances as Row[];
  };
  assert.deepEqual((await list()).map((row) => [row.name, row.state, row.sockets]), [
    ["room", "live", 1],
  ]);
  const evicted = await server.api(
    "POST",
    "/v1/app_default/durable-objects/conformance-ws/instances/room/evict?websockets=hibernate",
  );
  assert.equal(evicted.status, 200);
  await evicted.body?.cancel();
  assert.deepEqual((await list()).map((row) => [row.name, row.state, row.sockets]), [
    ["room", "hibernated", 1],
  ]);
});
