import assert from "node:assert/strict";
import { currentCallDepth, withCallDepth } from "../../workers/call_context.ts";
import { EventGate, ObjectResetError } from "../../workers/event_gate.ts";

function gate(timeoutMs?: number): { gate: EventGate; resets: ObjectResetError[] } {
  const resets: ObjectResetError[] = [];
  return { gate: new EventGate({ onReset: (error) => resets.push(error), timeoutMs }), resets };
}

Deno.test("EventGate.hold() rethrows a failure without resetting the object", async () => {
  const { gate: g, resets } = gate();
  await assert.rejects(() => g.hold(() => Promise.reject(new Error("txn failure"))), {
    message: "txn failure",
  });
  assert.deepEqual(resets, []);
  assert.equal(await g.hold(() => Promise.resolve("value")), "value");
  assert.equal(g.blocked, false);
});

Deno.test("EventGate.blockWhile() resets the object when the callback throws", async () => {
  const { gate: g, resets } = gate();
  await assert.rejects(() => g.blockWhile(() => Promise.reject(new Error("init"))), {
    message: "init",
  });
  assert.equal(resets.length, 1);
  assert.equal(resets[0]?.overloaded, false);
});

Deno.test("EventGate.blockWhile() past its timeout resets with an overload-class error", async () => {
  const { gate: g, resets } = gate(20);
  const hang = new Promise<never>(() => {});
  await assert.rejects(() => g.blockWhile(() => hang), {
    message: "A call to blockConcurrencyWhile() in a Durable Object waited for too long. " +
      "The call was canceled and the Durable Object was reset.",
  });
  assert.equal(resets[0]?.overloaded, true);
});

Deno.test("EventGate.run() holds events back while a callback blocks, in order", async () => {
  const { gate: g } = gate();
  const order: string[] = [];
  const release = Promise.withResolvers<void>();
  const blocking = g.blockWhile(async () => {
    await release.promise;
    order.push("block done");
  });
  const first = g.run(() => Promise.resolve(order.push("first")));
  const second = g.run(() => Promise.resolve(order.push("second")));
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(order, [], "nothing starts while blocked");
  release.resolve();
  await Promise.all([blocking, first, second]);
  assert.deepEqual(order, ["block done", "first", "second"]);
});

Deno.test("EventGate.run() starts each event in the call depth it was queued with", async () => {
  const { gate: g } = gate();
  const seen = await Promise.all([
    withCallDepth(3, () => g.run(() => Promise.resolve(currentCallDepth()))),
    withCallDepth(0, () => g.run(() => Promise.resolve(currentCallDepth()))),
    withCallDepth(7, () => g.run(() => Promise.resolve(currentCallDepth()))),
  ]);
  assert.deepEqual(seen, [3, 0, 7]);
});

Deno.test("EventGate.waiting tells whether queued events will start in the coming turns", async () => {
  const { gate: g } = gate();
  const seen: boolean[] = [];
  const first = g.run(() => Promise.resolve(seen.push(g.waiting)));
  const second = g.run(() => Promise.resolve(seen.push(g.waiting)));
  assert.equal(g.waiting, true);
  await Promise.all([first, second]);
  assert.deepEqual(seen, [true, false], "the first event starts with the second still queued");
  let release = () => {};
  const blocking = g.blockWhile(() => new Promise<void>((resolve) => release = resolve));
  const held = g.run(() => Promise.resolve(g.waiting));
  assert.equal(g.waiting, false, "events held back by blockConcurrencyWhile do not count");
  await new Promise((resolve) => setTimeout(resolve, 0)); // the callback has started
  assert.equal(g.waiting, false);
  release();
  await blocking;
  assert.equal(await held, false);
});
