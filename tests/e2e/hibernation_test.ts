/**
 * The Hibernation API (conformance section J) and real hibernation: an instance whose only
 * activity is hibernatable sockets is stopped (here through the operator's evict endpoint, or
 * after `--hibernate-after`) while its clients stay connected, and wakes on the next event.
 */

import assert from "node:assert/strict";
import { objectIdFromName } from "../../workers/protocol.ts";
import { fixture, getJson, startServer, type TestServer } from "../_helpers.ts";
import { rawUpgrade, until, WsClient } from "./_ws_client.ts";

const B = "/_do/conformance-ws";

async function conformance(options: { flags?: string[] } = {}): Promise<TestServer> {
  const server = await startServer(options);
  await server.deploy("conformance-ws", await fixture("conformance_ws.ts"));
  return server;
}

/** Hibernates instance `uid` through the operator endpoint (its sockets stay open). */
async function hibernate(server: TestServer, uid: string, cls = "conformance-ws"): Promise<void> {
  const res = await server.api(
    "POST",
    `/v1/app_default/durable-objects/${cls}/instances/${uid}/evict?websockets=hibernate`,
  );
  assert.equal(res.status, 200);
  assert.equal((await res.json()).evicted, true);
}

function live(server: TestServer, uid: string): boolean {
  const idHex = objectIdFromName("app_default/conformance-ws", uid);
  return server.server.deps.instances.liveInstance(`app_default/conformance-ws/${idHex}`) !==
    undefined;
}

async function get(server: TestServer, path: string): Promise<unknown> {
  return (await getJson(server, `${B}/${path}`)).body;
}

Deno.test("hibernation API: accept, echo of both message types, counting and tags (cases 94, 96, 98)", async () => {
  await using server = await conformance();
  await using a = await WsClient.open(server, `${B}/j94/ws-hib?tags=user:a,room:1`);
  a.send("hi");
  assert.equal(await a.text(), "text:hi");
  a.send(new Uint8Array([1, 2, 3]));
  assert.equal(await a.text(), "bin:3");
  a.send("tags");
  assert.equal(await a.text(), '["room:1","user:a"]');

  await using b = await WsClient.open(server, `${B}/j94/ws-hib?tags=a,a,b`);
  b.send("tags");
  assert.equal(await b.text(), '["a","b"]');
  const c = await WsClient.open(server, `${B}/j94/ws-hib?tags=b`);
  assert.equal(await get(server, "j94/ws-count"), 3);
  assert.equal(await get(server, "j94/ws-count?tag=b"), 2);
  assert.equal(await get(server, "j94/ws-count?tag=nope"), 0);
  c.ws.close(1000, "leaving");
  await c.closeEvent();
  await until(async () => await get(server, "j94/ws-count") === 2, "the closed socket to go");
  assert.equal(await get(server, "j94/broadcast?tag=b&msg=to-b"), 1);
  assert.equal(await b.text(), "to-b");
  assert.deepEqual(await get(server, "j94/log"), ["hi", [1000, "leaving", true]]);
});

Deno.test("hibernation API: tag limits, mixing the APIs, attachments, event timeout (cases 99, 104, 112)", async () => {
  await using server = await conformance();
  const tags = Array.from({ length: 10 }, (_, i) => `t${i}`).sort();
  assert.deepEqual(await get(server, "j99/ws-tags"), [
    { err: { name: "Error", message: "a Hibernatable WebSocket cannot have more than 10 tags" } },
    {
      err: {
        name: "Error",
        message: `"${"x".repeat(257)}" is longer than the max tag length (256 characters).`,
      },
    },
    tags,
    ["x".repeat(256)],
    ["a", "b"],
    { err: { name: "Error", message: "only hibernatable websockets can have tags." } },
    {
      err: {
        name: "Error",
        message:
          "Cannot call `acceptWebSocket()` if the WebSocket was already accepted via `accept()`",
      },
    },
    {
      err: {
        name: "Error",
        message:
          "you must call 'acceptWebSocket()' before attempting to access the tags of a WebSocket.",
      },
    },
  ]);
  assert.deepEqual(await get(server, "j104/ws-att"), [
    null,
    1,
    3,
    {
      err: {
        name: "Error",
        message: "A WebSocket 'attachment' cannot be larger than 16384 bytes.",
      },
    },
    "ok",
  ]);
  assert.deepEqual(await get(server, "j112/ws-timeout"), [
    5000,
    null,
    null,
    { err: { name: "Error", message: "Event timeout should not exceed 604800000 ms." } },
  ]);
  assert.equal(await get(server, "j99/ws-count"), 0, "internal pairs that were closed are gone");
});

Deno.test("hibernation: a message wakes the object with a new constructor run; the client never notices (case 100)", async () => {
  await using server = await conformance();
  await using client = await WsClient.open(server, `${B}/j100/ws-hib`);
  client.send("inst");
  const first = JSON.parse(await client.text());
  assert.equal(first.ctor, 1);
  await hibernate(server, "j100");
  assert.equal(live(server, "j100"), false);
  client.send("inst");
  const second = JSON.parse(await client.text());
  assert.equal(second.ctor, 2);
  assert.notEqual(second.inst, first.inst);
  assert.equal(client.ws.readyState, WebSocket.OPEN);
});

Deno.test("hibernation: an HTTP request wakes the object, which can send to its sockets (case 101)", async () => {
  await using server = await conformance();
  await using client = await WsClient.open(server, `${B}/j101/ws-hib`);
  await hibernate(server, "j101");
  assert.equal(await get(server, "j101/broadcast?msg=woke"), 1);
  assert.equal(await client.text(), "woke");
  assert.equal(await get(server, "j101/ws-count"), 1);
});

Deno.test("hibernation: the constructor sees its sockets and sends before the handler replies (case 102)", async () => {
  await using server = await conformance();
  await using client = await WsClient.open(server, `${B}/j102/ws-hib`);
  await get(server, "j102/set-flag?k=greet");
  await hibernate(server, "j102");
  client.send("any");
  assert.equal(await client.text(), "ctor-hello");
  assert.equal(await client.text(), "text:any");
});

Deno.test("hibernation: tags, attachments and the event timeout survive it", async () => {
  await using server = await conformance();
  await using client = await WsClient.open(
    server,
    `${B}/jsurv/ws-hib?tags=room:1,user:z&att=${encodeURIComponent('{"from":"fetch"}')}`,
  );
  client.send("att-get");
  assert.equal(await client.text(), '{"from":"fetch"}', "set before the 101 response");
  client.send('att-set:{"user":"z","n":[1,2]}');
  assert.equal(await client.text(), "att-ok");
  await get(server, "jsurv/ws-timeout?keep=2500");
  await hibernate(server, "jsurv");
  client.send("att-get");
  assert.equal(await client.text(), '{"user":"z","n":[1,2]}');
  client.send("tags");
  assert.equal(await client.text(), '["room:1","user:z"]');
  assert.equal(await get(server, "jsurv/get-timeout"), 2500);
  assert.equal(await get(server, "jsurv/ws-count?tag=user:z"), 1);
});

Deno.test("auto-response: answered without the handler, with a per-socket timestamp (case 105)", async () => {
  await using server = await conformance();
  await using client = await WsClient.open(server, `${B}/j105/ws-hib`);
  const before = await get(server, "j105/ar") as { pair: unknown; ts: number | null };
  assert.deepEqual(before, { pair: { request: "ping", response: "pong" }, ts: null });
  const sentAt = Date.now();
  client.send("ping");
  assert.equal(await client.text(), "pong");
  client.send("hello");
  assert.equal(await client.text(), "text:hello");
  const after = await get(server, "j105/ar") as { pair: unknown; ts: number };
  assert.deepEqual(after.pair, { request: "ping", response: "pong" });
  assert.ok(after.ts >= sentAt - 5, `timestamp ${after.ts} ≥ ${sentAt}`);
  assert.deepEqual(await get(server, "j105/log"), ["hello"], "ping never reached the handler");
});

Deno.test("auto-response: a hibernated object is not woken by it (case 107)", async () => {
  await using server = await conformance();
  await using client = await WsClient.open(server, `${B}/j107/ws-hib`);
  const { ctor } = await get(server, "j107/inst") as { ctor: number };
  await hibernate(server, "j107");
  for (let i = 0; i < 3; i++) {
    client.send("ping");
    assert.equal(await client.text(), "pong");
  }
  assert.equal(live(server, "j107"), false, "still hibernated");
  const woken = await get(server, "j107/inst") as { ctor: number };
  assert.equal(woken.ctor, ctor + 1, "only the GET constructed the object");
  const { ts } = await get(server, "j107/ar") as { ts: number | null };
  assert.ok(ts !== null, "the timestamp of a hibernated auto-response reaches the new worker");
});

Deno.test("auto-response: clearing it, and its size limits (case 108)", async () => {
  await using server = await conformance();
  await using client = await WsClient.open(server, `${B}/j108/ws-hib`);
  assert.equal(await get(server, "j108/ar-clear"), null);
  client.send("ping");
  assert.equal(await client.text(), "text:ping");
  assert.deepEqual(await get(server, "j108/ar-limits"), [
    {
      err: {
        name: "RangeError",
        message: "Request cannot be larger than 2048 bytes. A request of size 2049 was provided.",
      },
    },
    {
      err: {
        name: "RangeError",
        message: "Response cannot be larger than 2048 bytes. A response of size 2049 was provided.",
      },
    },
    "ok",
  ]);
});

Deno.test("close: no close frame gives 1005, a dropped connection 1006, even while hibernated", async () => {
  await using server = await conformance();
  const quiet = await WsClient.open(server, `${B}/jclose/ws-hib`);
  quiet.ws.close();
  await quiet.closeEvent();
  const { status, conn } = await rawUpgrade(server, `${B}/jclose/ws-hib`);
  assert.equal(status, 101);
  await until(async () => await get(server, "jclose/ws-count") === 1, "the first close");
  await hibernate(server, "jclose");
  conn.close();
  await until(async () => (await get(server, "jclose/log") as unknown[]).length === 2, "both");
  assert.deepEqual(await get(server, "jclose/log"), [
    [1005, "", true],
    [1006, "WebSocket disconnected without sending Close frame.", false],
  ]);
  assert.equal(await get(server, "jclose/ws-count"), 0);
});

Deno.test("close: the object's own close() reaches the client, and webSocketClose hears the echo", async () => {
  await using server = await conformance();
  const client = await WsClient.open(server, `${B}/jown/ws-hib`);
  client.send("close:4001,server out");
  const closed = await client.closeEvent();
  assert.equal(closed.code, 4001);
  assert.equal(closed.reason, "server out");
  await until(async () => (await get(server, "jown/log") as unknown[]).length === 1, "the echo");
  assert.deepEqual(await get(server, "jown/log"), [[4001, "server out", true]]);
});

Deno.test("close: a class without webSocketClose still drops the closed socket (case 111)", async () => {
  await using server = await startServer();
  await server.deploy("no-close", await fixture("ws_no_close.ts"));
  const client = await WsClient.open(server, "/_do/no-close/j111");
  client.send("echo");
  assert.equal(await client.text(), "echo");
  assert.equal((await getJson(server, "/_do/no-close/j111")).body, 1);
  client.ws.close(1000);
  await client.closeEvent();
  await until(
    async () => (await getJson(server, "/_do/no-close/j111")).body === 0,
    "the socket to be dropped",
  );
});

Deno.test("order: 100 rapid messages from one socket are handled in order, also across a wake-up", async () => {
  await using server = await conformance();
  await using client = await WsClient.open(server, `${B}/jorder/ws-hib`);
  // The worker is busy when the eviction arrives: what it has not dispatched by then is handed
  // to the next worker, still in order. The auto-response ("pong", answered by the host while
  // the worker spins) shows that the host has read and forwarded every earlier message.
  client.send("spin:1000");
  for (let i = 0; i < 50; i++) client.send(`m${i}`);
  client.send("ping");
  assert.equal(await client.text(), "pong");
  await hibernate(server, "jorder");
  for (let i = 50; i < 100; i++) client.send(`m${i}`);
  assert.equal(await client.text(), "spun");
  const replies: string[] = [];
  for (let i = 0; i < 100; i++) replies.push(await client.text());
  const expected = Array.from({ length: 100 }, (_, i) => `m${i}`);
  assert.deepEqual(replies, expected.map((m) => `text:${m}`));
  assert.deepEqual(await get(server, "jorder/log"), expected);
});

Deno.test("hibernation: after --hibernate-after idle seconds the worker stops, unless a timer is pending", async () => {
  await using server = await conformance({ flags: ["--hibernate-after", "1"] });
  await using timed = await WsClient.open(server, `${B}/jtimer/ws-hib`);
  await get(server, "jtimer/timer?ms=60000");
  await using idle = await WsClient.open(server, `${B}/jidle/ws-hib`);
  idle.send("inst");
  const first = JSON.parse(await idle.text());
  await until(() => !live(server, "jidle"), "the idle instance to hibernate");
  assert.ok(live(server, "jtimer"), "a pending setTimeout keeps its instance running");
  idle.send("inst");
  const second = JSON.parse(await idle.text());
  assert.equal(second.ctor, first.ctor + 1);
  timed.send("x");
  assert.equal(await timed.text(), "text:x");
});
