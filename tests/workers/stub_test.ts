import assert from "node:assert/strict";
import { DurableObjectNamespace } from "../../workers/namespace.ts";
import { objectIdFromName, type WireCall, type WireCallResult } from "../../workers/protocol.ts";
import { CallChannel, remoteError } from "../../workers/stub.ts";

/** A channel whose host answers every call with `answer` and records what was sent. */
function channel(
  answer: (call: WireCall) => WireCallResult,
): { calls: WireCall[]; ch: CallChannel } {
  const calls: WireCall[] = [];
  const ch: CallChannel = new CallChannel((message) => {
    if (message.type !== "call") return;
    calls.push(message.call);
    queueMicrotask(() => ch.settle(message.callId, answer(message.call)));
  }, () => Promise.resolve());
  return { calls, ch };
}

Deno.test("remoteError() keeps name and message and sets Cloudflare's flags", () => {
  const thrown = remoteError({ name: "TypeError", message: "bad", code: "USER_EXCEPTION" });
  assert.ok(thrown instanceof TypeError);
  assert.equal(thrown.message, "bad");
  assert.deepEqual({ ...thrown }, { remote: true });
  const custom = remoteError({ name: "NamedError", message: "x", code: "USER_EXCEPTION" });
  assert.equal(custom.name, "NamedError");
  const reset = remoteError({ name: "Error", message: "r", code: "OBJECT_RESET", reset: true });
  assert.deepEqual({ ...reset }, { durableObjectReset: true, retryable: true });
  const overloaded = remoteError({
    name: "Error",
    message: "o",
    code: "OBJECT_RESET",
    reset: true,
    overloaded: true,
  });
  assert.deepEqual({ ...overloaded }, { durableObjectReset: true, overloaded: true });
  assert.deepEqual({ ...remoteError({ name: "Error", message: "g", code: "WORKER_GONE" }) }, {
    retryable: true,
  });
  const locked = remoteError({ name: "Error", message: "l", code: "STORAGE_UNAVAILABLE" });
  assert.deepEqual({ ...locked }, { retryable: true }, "a locked database may open on a retry");
  const corrupt = remoteError({ name: "Error", message: "c", code: "STORAGE_CORRUPTED" });
  assert.deepEqual({ ...corrupt }, {}, "a corrupt one will not");
});

Deno.test("DurableObjectNamespace ids: names hash like the data plane, strings are checked", () => {
  const ns = new DurableObjectNamespace(
    "app_x",
    "room",
    channel(() => ({ ok: true, value: new Uint8Array() })).ch,
  );
  const id = ns.idFromName("lobby");
  assert.equal(id.toString(), objectIdFromName("app_x/room", "lobby"));
  assert.equal(id.name, "lobby");
  const unique = ns.newUniqueId();
  assert.equal(unique.name, undefined);
  assert.ok(ns.idFromString(unique.toString().toUpperCase()).equals(unique));
  assert.throws(() => ns.idFromString("xyz"), {
    name: "TypeError",
    message: "Invalid Durable Object ID: must be 64 hex digits",
  });
  const other = new DurableObjectNamespace(
    "app_x",
    "other",
    channel(() => ({ ok: true, value: new Uint8Array() })).ch,
  );
  assert.throws(() => ns.idFromString(other.newUniqueId().toString()), {
    name: "TypeError",
    message: "Durable Object ID is not valid for this namespace.",
  });
  assert.throws(() => ns.get(other.idFromName("lobby")), { name: "TypeError" });
});

Deno.test("a stub turns method calls into RPC calls and is not a thenable", async () => {
  const { calls, ch } = channel(() => ({
    ok: false,
    error: { name: "RangeError", message: "no", code: "USER_EXCEPTION" },
  }));
  const stub = new DurableObjectNamespace("app_x", "room", ch).getByName("lobby") as unknown as
    & Record<string, (...args: unknown[]) => Promise<unknown>>
    & { then?: unknown };
  assert.equal(stub.then, undefined);
  await assert.rejects(() => stub.join?.("ann", new Date(1)) ?? Promise.resolve(), {
    name: "RangeError",
    message: "no",
  });
  assert.equal(calls.length, 1);
  assert.equal(calls[0]?.kind, "rpc");
  assert.deepEqual(calls[0]?.target, {
    className: "room",
    idHex: objectIdFromName("app_x/room", "lobby"),
    name: "lobby",
  });
  assert.equal(calls[0]?.kind === "rpc" ? calls[0].depth : -1, 1);
});
