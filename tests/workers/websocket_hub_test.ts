import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import type { InstanceInit, WireSocketOp, WorkerMessage } from "../../workers/protocol.ts";
import { pendingTimers, trackTimers } from "../../workers/pending_timers.ts";
import { WebSocketPair, type WorkerWebSocket } from "../../workers/websocket.ts";
import { WebSocketHub } from "../../workers/websocket_hub.ts";

type SocketInit = Pick<InstanceInit, "sockets" | "autoResponse" | "eventTimeoutMs" | "nextSockId">;

const NO_SOCKETS: SocketInit = {
  sockets: [],
  autoResponse: null,
  eventTimeoutMs: null,
  nextSockId: 1,
};

/** A hub whose posts are recorded and whose events run on `instance` at once. */
function hub(instance: Record<string, unknown> = {}, init: SocketInit = NO_SOCKETS) {
  const posted: WorkerMessage[] = [];
  let commits = 0;
  const sockets = new WebSocketHub(init, {
    post: (message) => posted.push(message),
    commit: () => void commits++,
    deliver: (event) => event(instance),
    busy: () => false,
  });
  const ops = () =>
    posted.flatMap((message) => message.type === "ws-out" ? message.ops : []) as WireSocketOp[];
  return { sockets, posted, ops, commits: () => commits };
}

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

Deno.test("WebSocketHub.getWebSockets() lists newest first, and in accept order for a tag", () => {
  const { sockets } = hub();
  const [a, b, c] = [new WebSocketPair()[1], new WebSocketPair()[1], new WebSocketPair()[1]];
  sockets.acceptWebSocket(a, ["x"]);
  sockets.acceptWebSocket(b, ["y"]);
  sockets.acceptWebSocket(c, ["x"]);
  assert.deepEqual(sockets.getWebSockets(), [c, b, a]);
  assert.deepEqual(sockets.getWebSockets("x"), [a, c]);
  assert.deepEqual(sockets.getWebSockets("z"), []);
  a.close();
  assert.deepEqual(sockets.getWebSockets(), [c, b], "a socket that never reached a client goes");
});

Deno.test("WebSocketHub batches one turn's operations into one message after the commit", async () => {
  const init = {
    ...NO_SOCKETS,
    sockets: [1, 2, 3].map((sockId) => ({
      sockId,
      tags: [],
      attachment: null,
      autoResponseAt: null,
      readyState: 1,
    })),
  };
  const { sockets, posted, ops, commits } = hub({}, init);
  for (const ws of sockets.getWebSockets()) ws.send("all");
  sockets.getWebSockets()[0]?.send(new Uint8Array([7]));
  assert.equal(posted.length, 0, "nothing leaves before the end of the turn");
  await turn();
  assert.equal(posted.length, 1);
  assert.equal(commits(), 1, "the turn's writes commit first (the output gate)");
  const [broadcast, binary] = ops();
  assert.deepEqual(broadcast, { op: "send", sockIds: [3, 2, 1], data: "all" });
  assert.equal(binary?.op, "send");
});

Deno.test("WebSocketHub acknowledges dispatched messages and is idle only when handlers finished", async () => {
  const release = Promise.withResolvers<void>();
  const seen: unknown[] = [];
  const { sockets, ops } = hub({
    async webSocketMessage(_ws: unknown, message: unknown) {
      seen.push(message);
      await release.promise;
    },
  }, {
    ...NO_SOCKETS,
    sockets: [{ sockId: 5, tags: [], attachment: null, autoResponseAt: null, readyState: 1 }],
  });
  sockets.receive({ type: "ws-message", sockId: 5, data: "a" });
  sockets.receive({ type: "ws-message", sockId: 5, data: "b" });
  sockets.receive({ type: "ws-message", sockId: 99, data: "unknown socket" });
  await turn();
  assert.deepEqual(seen, ["a", "b"]);
  assert.deepEqual(ops(), [{ op: "ack", sockId: 5, count: 2 }, {
    op: "ack",
    sockId: 99,
    count: 1,
  }]);
  assert.equal(sockets.idle, false, "two handlers are still running");
  release.resolve();
  await turn();
  assert.equal(sockets.idle, true);
});

Deno.test("WebSocketHub keeps a socket listed during webSocketClose, CLOSING until it answers", async () => {
  const during: unknown[] = [];
  const { sockets } = hub({
    webSocketClose(ws: WorkerWebSocket, code: number) {
      during.push(sockets.getWebSockets().length, ws.readyState, code);
    },
  }, {
    ...NO_SOCKETS,
    sockets: [{ sockId: 1, tags: ["t"], attachment: null, autoResponseAt: null, readyState: 1 }],
  });
  sockets.receive({ type: "ws-close", sockId: 1, code: 1005, reason: "", wasClean: true });
  await turn();
  assert.deepEqual(during, [1, 2, 1005]);
  assert.equal(sockets.getWebSockets().length, 0);
});

Deno.test("trackTimers() counts pending timeouts and intervals until they fire or are cleared", async () => {
  const scope = {
    setTimeout: globalThis.setTimeout,
    setInterval: globalThis.setInterval,
    clearTimeout: globalThis.clearTimeout,
    clearInterval: globalThis.clearInterval,
  } as unknown as typeof globalThis;
  trackTimers(scope);
  const before = pendingTimers();
  const fired = Promise.withResolvers<void>();
  scope.setTimeout(() => fired.resolve(), 1);
  const interval = scope.setInterval(() => {}, 1000);
  const cleared = scope.setTimeout(() => {}, 1000);
  assert.equal(pendingTimers(), before + 3);
  scope.clearTimeout(cleared);
  await fired.promise;
  assert.equal(pendingTimers(), before + 1, "the interval holds until cleared");
  scope.clearInterval(interval);
  assert.equal(pendingTimers(), before);
});
