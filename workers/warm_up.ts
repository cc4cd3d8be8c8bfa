/**
 * Runs one throwaway instance through the whole event path while a worker waits in the pool.
 *
 * V8 compiles a function the first time it runs, so a fresh worker's first instance pays for
 * compiling the runtime (storage, the event gate, request and response conversion) on top of its
 * real work: its first request took ~4.3 ms inside the worker, 1.2–1.5 ms after this warm-up,
 * measured. Doing it here, before the worker reports `ready`, moves that cost out of the cold start.
 *
 * The throwaway instance has an in-memory database, a class of our own, and a port that drops
 * what it is sent; nothing of it outlives this function.
 */

import { loadBundle, SCRIPT_MARK } from "./class_loader.ts";
import { type HostPort, ObjectRuntime } from "./object_runtime.ts";
import { requestFromWire } from "./protocol.ts";
import type { DurableObjectState } from "./state.ts";

class WarmUp {
  readonly ctx: DurableObjectState;
  constructor(ctx: DurableObjectState) {
    this.ctx = ctx;
  }

  async fetch(request: Request): Promise<Response> {
    const count = Number(await this.ctx.storage.get("count") ?? 0) + 1;
    await this.ctx.storage.put("count", count);
    return new Response(`${request.method} ${count}`);
  }
}

/** Exercises an instance's start, one request with storage, and its stop. */
export async function warmUp(cpu: () => number): Promise<void> {
  const answered = Promise.withResolvers<void>();
  const port: HostPort = {
    post(message) {
      if (message.type === "response" || message.type === "error") answered.resolve();
    },
    cpu,
  };
  const runtime = new ObjectRuntime({
    appId: "warm-up",
    className: "warm-up",
    code: "",
    exportName: "WarmUp",
    idHex: "0".repeat(64),
    name: null,
    dbPath: ":memory:",
    env: {},
    bindings: [],
    maxKeyBytes: 2048,
    maxValueBytes: 131_072,
    sockets: [],
    autoResponse: null,
    eventTimeoutMs: null,
    nextSockId: 1,
  }, { objectClass: WarmUp, port, env: {} });
  await runtime.fetch(
    1,
    requestFromWire({ url: "http://warm-up/", method: "GET", headers: [], body: null }),
  );
  await answered.promise;
  runtime.stop();
  // Also the path a class is loaded through.
  await loadBundle(`${SCRIPT_MARK}exports.WarmUp = class {};`);
}
