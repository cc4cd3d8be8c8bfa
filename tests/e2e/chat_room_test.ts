/**
 * The chat-room example as its users run it: many browser-style clients in one room, a room
 * that hibernates between messages, and clients that see nothing but the messages.
 */

import assert from "node:assert/strict";
import { startServer } from "../_helpers.ts";
import { WsClient } from "./_ws_client.ts";

const CLIENTS = 200;

interface Frame {
  type: "init" | "message";
  messages?: unknown[];
  message?: { user: string; text: string };
}

async function frame(client: WsClient): Promise<Frame> {
  return JSON.parse(await client.text());
}

Deno.test("chat room: 200 clients in one room all receive every broadcast, across hibernation", async () => {
  await using server = await startServer();
  const code = await Deno.readTextFile(new URL("../../examples/chat-room.ts", import.meta.url));
  await server.deploy("chat-room", code);
  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, () => WsClient.open(server, "/_do/chat-room/lobby")),
  );
  try {
    for (const client of clients) {
      assert.deepEqual(await frame(client), { type: "init", messages: [] });
    }
    const senders = [0, 50, 100, 150, 199];
    for (const i of senders) {
      clients[i]?.send(JSON.stringify({ user: `u${i}`, text: `hello from ${i}` }));
    }
    const orders = await Promise.all(clients.map(async (client) => {
      const texts: string[] = [];
      for (let n = 0; n < senders.length; n++) {
        texts.push((await frame(client)).message?.text ?? "");
      }
      return texts.join("|");
    }));
    assert.equal(new Set(orders).size, 1, "every client saw the same messages in the same order");
    assert.deepEqual(orders[0]?.split("|").sort(), senders.map((i) => `hello from ${i}`).sort());

    const evicted = await server.api(
      "POST",
      "/v1/app_default/durable-objects/chat-room/instances/lobby/evict?websockets=hibernate",
    );
    assert.deepEqual(await evicted.json(), {
      evicted: true,
      websockets: "hibernate",
      sockets_open: CLIENTS,
    });
    const posted = await server.fetch("/_do/chat-room/lobby", {
      method: "POST",
      body: JSON.stringify({ user: "http", text: "after the nap" }),
    });
    assert.equal(posted.status, 200);
    await posted.body?.cancel();
    for (const client of clients) {
      assert.deepEqual((await frame(client)).message?.text, "after the nap");
      assert.equal(client.ws.readyState, WebSocket.OPEN);
    }
  } finally {
    await Promise.all(clients.map((client) => client[Symbol.asyncDispose]()));
  }
});
