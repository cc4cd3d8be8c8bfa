/**
 * WebSockets bridged to objects: the standard API (conformance section I), the upgrade path
 * (access check, `token` query parameter), and the host's limits and close codes.
 */

import assert from "node:assert/strict";
import { MAX_INBOX_MESSAGES } from "../../src/socket_registry.ts";
import { WINDOW } from "../../src/ws_bridge.ts";
import { objectIdFromName } from "../../workers/protocol.ts";
import { fixture, getJson, startServer, type TestServer } from "../_helpers.ts";
import { rawUpgrade, until, WsClient } from "./_ws_client.ts";

const B = "/_do/conformance-ws";

async function conformance(options: { flags?: string[] } = {}): Promise<TestServer> {
  const server = await startServer(options);
  await server.deploy("conformance-ws", await fixture("conformance_ws.ts"));
  return server;
}

/** Whether instance `name` of conformance-ws has a running worker. */
function live(server: TestServer, name: string): boolean {
  const idHex = objectIdFromName("app_default/conformance-ws", name);
  const key = `app_default/conformance-ws/${idHex}`;
  return server.server.deps.instances.liveInstance(key) !== undefined;
}

async function log(server: TestServer, uid: string): Promise<unknown[]> {
  return (await getJson(server, `${B}/${uid}/log`)).body as unknown[];
}

Deno.test("standard API: echo of text and binary, then the client's close is echoed (case 90)", async () => {
  await using server = await conformance();
  const client = await WsClient.open(server, `${B}/c90/ws-std`);
  client.send("hello");
  assert.equal(await client.text(), "echo:hello");
  client.send(new Uint8Array([1, 2, 3]));
  assert.deepEqual([...new Uint8Array(await client.next() as ArrayBuffer)], [1, 2, 3]);
  client.ws.close(1000, "bye");
  const closed = await client.closeEvent();
  assert.equal(closed.code, 1000);
  assert.equal(closed.reason, "bye", "the auto-reply echoes the client's reason");
  await until(async () => (await log(server, "c90")).length > 0, "the close to be logged");
  assert.deepEqual(await log(server, "c90"), [[1000, "bye", true]]);
});

Deno.test("standard API: close() and send() validation (case 92)", async () => {
  await using server = await conformance();
  const { body } = await getJson(server, `${B}/c92/ws-validate`);
  assert.deepEqual(body, [
    { err: { name: "InvalidAccessError", message: "Invalid WebSocket close code: 1005." } },
    {
      err: {
        name: "SyntaxError",
        message: "WebSocket close reason must not be longer than 123 bytes when UTF-8 encoded.",
      },
    },
    {
      err: {
        name: "TypeError",
        message: "If you specify a WebSocket close reason, you must also specify a code.",
      },
    },
    "ok",
    { err: { name: "TypeError", message: "Can't call WebSocket send() after close()." } },
    "ok",
  ]);
});

Deno.test("upgrade: a fetch that throws fails the handshake with 500 and no 101 (case 93)", async () => {
  await using server = await conformance();
  const { status, conn } = await rawUpgrade(server, `${B}/c93/ws-throw`);
  conn.close();
  assert.equal(status, 500);
  const { status: missing, conn: other } = await rawUpgrade(server, "/_do/nope/x");
  other.close();
  assert.equal(missing, 404);
});

Deno.test("upgrade: the access mode applies, and a token query parameter stands in for the header", async () => {
  await using server = await startServer();
  const serviceKey = server.server.firstStart.defaultApp?.service_key ?? "";
  await server.deploy("conformance-ws", await fixture("conformance_ws.ts"), "service_key");
  const refused = await rawUpgrade(server, `${B}/auth/ws-hib`);
  refused.conn.close();
  assert.equal(refused.status, 401);
  await using client = await WsClient.open(server, `${B}/auth/ws-hib?token=${serviceKey}`);
  client.send("hi");
  assert.equal(await client.text(), "text:hi");
  const http = await server.fetch(`${B}/auth/ws-count?token=${serviceKey}`);
  assert.equal(http.status, 401, "plain HTTP requests still need the header");
  await http.body?.cancel();
});

Deno.test("standard API: an accept()-ed socket keeps its instance from hibernating (case 91)", async () => {
  await using server = await conformance({ flags: ["--hibernate-after", "1"] });
  await using std = await WsClient.open(server, `${B}/c91std/ws-std`);
  std.send("inst");
  const before = JSON.parse(await std.text());
  await using hib = await WsClient.open(server, `${B}/c91hib/ws-hib`);
  // The hibernatable instance opened later hibernates; by then the other one was eligible too.
  await until(() => !live(server, "c91hib"), "the hibernatable instance to hibernate");
  assert.ok(live(server, "c91std"), "the instance with a standard socket is still running");
  std.send("inst");
  assert.deepEqual(JSON.parse(await std.text()), before);
  std.send("still");
  assert.equal(await std.text(), "echo:still");
  hib.send("x");
  assert.equal(await hib.text(), "text:x");
});

Deno.test("limits: a message over 32 MiB closes the socket with 1009", async () => {
  await using server = await conformance();
  const client = await WsClient.open(server, `${B}/big/ws-hib`);
  client.send(new Uint8Array(32 * 1024 * 1024 + 1));
  const closed = await client.closeEvent();
  assert.equal(closed.code, 1009);
  await until(async () => (await log(server, "big")).length > 0, "the object to hear of it");
  assert.deepEqual(await log(server, "big"), [
    ["error", "WebSocket message is larger than 33554432 bytes."],
  ]);
  assert.equal((await getJson(server, `${B}/big/ws-count`)).body, 0);
});

Deno.test("limits: a client that does not read is closed with 1011 before the host buffers 16 MiB", async () => {
  await using server = await conformance();
  const { status, conn } = await rawUpgrade(server, `${B}/slow/ws-hib`);
  assert.equal(status, 101);
  try {
    // 64 MiB to a client that never reads: kernel buffers take some, the host caps the rest.
    const flood = await getJson(server, `${B}/slow/flood?n=64&size=1048576`);
    assert.equal(flood.body, "ok");
    await until(
      async () => (await getJson(server, `${B}/slow/ws-count`)).body === 0,
      "the stalled socket to be dropped",
    );
    const entries = await log(server, "slow");
    assert.equal(entries.length, 1);
    assert.match(String((entries[0] as string[])[1]), /Too much data queued for the client/);
  } finally {
    conn.close();
  }
});

Deno.test("limits: a client flooding a busy object is closed with 1011 once its queue is full", async () => {
  await using server = await conformance();
  const client = await WsClient.open(server, `${B}/flood/ws-hib`);
  // The object spins on the first message, so nothing is acknowledged: WINDOW messages are
  // posted to it, MAX_INBOX_MESSAGES wait on the host, and the next one overflows. (Sending
  // more after that would make the close abortive: Deno drops a connection that keeps sending
  // data after the server's close frame.)
  client.send("spin:2000");
  for (let i = 1; i < WINDOW + MAX_INBOX_MESSAGES + 1; i++) client.send(`m${i}`);
  const closed = await client.closeEvent();
  assert.equal(closed.code, 1011);
  assert.equal(closed.reason, "Too much data queued");
  await until(
    async () => (await log(server, "flood")).length === WINDOW,
    "the object to hear of it",
  );
  const entries = await log(server, "flood");
  assert.deepEqual(
    entries.slice(0, -1),
    Array.from({ length: WINDOW - 1 }, (_, i) => `m${i + 1}`),
    "what was posted before the overflow is still delivered, in order",
  );
  assert.deepEqual(entries.at(-1), [
    "error",
    "Too many messages queued for the Durable Object; the socket was closed.",
  ]);
});

Deno.test("close codes: redeploy, set_env and delete close sockets (hibernated too) with 1012, ctx.abort() with 1011", async () => {
  await using server = await conformance();
  const running = await WsClient.open(server, `${B}/r1/ws-hib`);
  const hibernated = await WsClient.open(server, `${B}/r2/ws-hib`);
  const evicted = await server.api(
    "POST",
    "/v1/app_default/durable-objects/conformance-ws/instances/r2/evict",
  );
  assert.equal(evicted.status, 200);
  assert.deepEqual(await evicted.json(), {
    evicted: true,
    websockets: "hibernate",
    sockets_open: 1,
  });
  await server.deploy("conformance-ws", await fixture("conformance_ws.ts"));
  assert.equal((await running.closeEvent()).code, 1012);
  assert.equal((await hibernated.closeEvent()).code, 1012);

  const envChange = await WsClient.open(server, `${B}/r4/ws-hib`);
  const env = await server.api("PUT", "/v1/app_default/durable-objects/env/GREETING", {
    value: "hi",
  });
  assert.equal(env.status, 200);
  await env.body?.cancel();
  assert.equal((await envChange.closeEvent()).code, 1012, "set_env");

  const aborted = await WsClient.open(server, `${B}/r3/ws-hib`);
  const res = await server.fetch(`${B}/r3/abort`);
  assert.equal(res.status, 500);
  await res.body?.cancel();
  const closed = await aborted.closeEvent();
  assert.equal(closed.code, 1011);
  assert.equal(closed.reason, "Durable Object connection closed because the object was reset.");

  const deleted = await WsClient.open(server, `${B}/r5/ws-hib`);
  const res2 = await server.api("DELETE", "/v1/app_default/durable-objects/conformance-ws");
  assert.equal(res2.status, 200);
  await res2.body?.cancel();
  assert.equal((await deleted.closeEvent()).code, 1012, "delete");
});

Deno.test("close codes: an upgrade answered just before a redeploy, set_env or delete closes with 1012", async () => {
  await using server = await conformance();
  const instances = server.server.deps.instances;
  const fetchFromInstance = instances.fetch.bind(instances);
  let between: (() => Promise<Response>) | null = null;
  // The change completes after the object answered the upgrade and before the host upgrades.
  instances.fetch = async (target, req) => {
    const res = await fetchFromInstance(target, req);
    const change = between;
    between = null;
    if (change) await (await change()).body?.cancel();
    return res;
  };
  const redeploy = async () =>
    await server.api("POST", "/v1/app_default/durable-objects", {
      name: "conformance-ws",
      code: await fixture("conformance_ws.ts"),
      access_mode: "public",
    });
  const setEnv = () =>
    server.api("PUT", "/v1/app_default/durable-objects/env/GREETING", { value: "hi" });
  const remove = () => server.api("DELETE", "/v1/app_default/durable-objects/conformance-ws");
  const cases: [string, () => Promise<Response>, string][] = [
    ["redeploy, accept()", redeploy, "ws-std"],
    ["redeploy, hibernatable", redeploy, "ws-hib"],
    ["set_env", setEnv, "ws-hib"],
    ["delete", remove, "ws-std"],
  ];
  for (const [label, change, route] of cases) {
    between = change;
    const client = await WsClient.open(server, `${B}/race-${route}/${route}`);
    assert.equal(between, null, `${label}: the change ran during the upgrade`);
    const closed = await client.closeEvent();
    assert.equal(closed.code, 1012, label);
    assert.match(closed.reason, /^Durable Object class was (redeployed|deleted)$/, label);
  }
});

Deno.test("close codes: evict with websockets=close closes with 1001, and so does shutdown", async () => {
  const server = await conformance();
  try {
    const evicted = await WsClient.open(server, `${B}/e1/ws-hib`);
    const res = await server.api(
      "POST",
      "/v1/app_default/durable-objects/conformance-ws/instances/e1/evict?websockets=close",
    );
    assert.deepEqual(await res.json(), { evicted: true, websockets: "close", sockets_open: 0 });
    assert.equal((await evicted.closeEvent()).code, 1001);
    const bad = await server.api(
      "POST",
      "/v1/app_default/durable-objects/conformance-ws/instances/e1/evict?websockets=maybe",
    );
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
    const forbidden = await server.api(
      "POST",
      "/v1/app_default/durable-objects/conformance-ws/instances/e1/evict",
      undefined,
      server.server.firstStart.defaultApp?.service_key,
    );
    assert.equal(forbidden.status, 403);
    await forbidden.body?.cancel();

    const open = await WsClient.open(server, `${B}/e2/ws-hib`);
    await server.stop();
    assert.equal((await open.closeEvent()).code, 1001);
  } finally {
    await server[Symbol.asyncDispose]();
  }
});
