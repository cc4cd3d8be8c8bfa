/**
 * The instance's own memory check: V8 heap plus `ArrayBuffer` memory against its limit.
 *
 * The worker's `resourceLimits` cap only the V8 heap. `ArrayBuffer` and typed-array backing
 * stores live outside it (a worker capped at 64 MB allocated 2.5 GB of `Uint8Array`s), so the
 * worker also measures itself: `used_heap_size + external_memory` of its own isolate
 * (`node:v8` `getHeapStatistics()`, under 1 µs; `external_memory` counts every live
 * `ArrayBuffer`, typed array, resizable buffer and `Response`/`structuredClone` copy, measured
 * on Deno 2.9.6). The check runs before every message the worker posts (so at the end of every
 * event, and of every turn that sends socket output) and on a timer while something can run:
 * every {@linkcode MIN_TICK_MS} after an event arrives, backing off to {@linkcode MAX_TICK_MS}
 * while the usage stays put, and stopping once no request is in flight and no timer,
 * `waitUntil` or uncommitted write is pending (a timer wake-up costs an idle worker about
 * 0.2–0.7 ms of CPU: too much to pay in every idle instance).
 *
 * Dead buffers count until V8 collects them, and V8 lets them pile up (a loop dropping 20 MB
 * buffers reached 186 MB before a collection; a synchronous one 1.4 GB). So a reading over the
 * limit is confirmed after a forced full collection (about 6 ms of CPU; at most one per
 * {@linkcode GC_EVERY_MS}, a reading in between waits for the next check). Still over: the
 * worker tells the host (`memory`, `exceeded: true`) and freezes until the host terminates it;
 * the event in flight fails with `MEMORY_LIMIT_EXCEEDED`. It also reports its usage whenever it
 * moves to another eighth of the limit, which the server's guard (`src/memory_guard.ts`) uses to
 * pick a culprit.
 *
 * Not counted: `Blob` contents, `SharedArrayBuffer` and `WebAssembly.Memory` (held outside
 * V8's accounting). Not seen: a synchronous loop that never yields, and code run by outbound
 * I/O alone (a client WebSocket's messages) in an instance with nothing else pending. The
 * server's RSS guard is the backstop for those.
 */

import { getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { clearTimeout as clearTimer, setTimeout as setTimer } from "node:timers";
import { pendingTimers } from "./pending_timers.ts";
import type { HostMessage, WorkerMessage } from "./protocol.ts";

/** Timer period after an event arrives. */
export const MIN_TICK_MS = 100;
/** Longest timer period, reached while the usage stays put. */
export const MAX_TICK_MS = 1_600;
/** A change smaller than this between two ticks counts as steady. */
const STEADY_BYTES = 1 << 20;
/** Forced collections are at most this frequent. */
const GC_EVERY_MS = 100;

// Captured when the bootstrap loads, before user code can replace them.
const heapStatistics = getHeapStatistics;
const now = performance.now.bind(performance);
const wait = Atomics.wait;
const frozen = new Int32Array(new SharedArrayBuffer(4));

/** What the guard needs from the worker. */
export interface MemoryGuardOptions {
  limitMb: number;
  /** Sends to the host without passing through the check again. */
  post(message: WorkerMessage): void;
  /** Whether the instance has work pending that runs without an event (`waitUntil`, …). */
  busy(): boolean;
}

/** Checks one instance's memory against its limit. */
export class MemoryGuard {
  readonly #limitBytes: number;
  readonly #options: MemoryGuardOptions;
  /** Requests (fetch, alarm, RPC) received and not answered yet. */
  readonly #inFlight = new Set<number>();
  #collect: (() => void) | null = null;
  #lastGcAt = -Infinity;
  #reportedEighth = 0;
  #tickMs = MIN_TICK_MS;
  #timer: ReturnType<typeof setTimer> | null = null;
  #lastTickBytes = 0;

  constructor(options: MemoryGuardOptions) {
    this.#limitBytes = options.limitMb * 1024 * 1024;
    this.#options = options;
    this.#schedule();
  }

  /** A host message arrived: track requests, and poll at the fastest rate again. */
  received(message: HostMessage): void {
    if ("reqId" in message) this.#inFlight.add(message.reqId);
    if (this.#timer !== null && this.#tickMs === MIN_TICK_MS) return;
    if (this.#timer !== null) clearTimer(this.#timer);
    this.#tickMs = MIN_TICK_MS;
    this.#schedule();
  }

  /**
   * Measures and enforces before `message` leaves; returns the bytes measured. Over the limit
   * (after a collection) it reports to the host and never returns: the thread waits to be
   * terminated.
   */
  check(message?: WorkerMessage): number {
    if (message && "reqId" in message) this.#inFlight.delete(message.reqId);
    let bytes = usedBytes();
    if (bytes > this.#limitBytes) {
      if (now() - this.#lastGcAt < GC_EVERY_MS) return bytes;
      this.#lastGcAt = now();
      this.#gc();
      bytes = usedBytes();
      if (bytes > this.#limitBytes) {
        this.#options.post({ type: "memory", bytes, exceeded: true });
        for (;;) wait(frozen, 0, 0);
      }
    }
    const eighth = Math.floor(bytes * 8 / this.#limitBytes);
    if (eighth !== this.#reportedEighth) {
      this.#reportedEighth = eighth;
      this.#options.post({ type: "memory", bytes, exceeded: false });
    }
    return bytes;
  }

  #schedule(): void {
    const timer = setTimer(() => this.#tick(), this.#tickMs);
    timer.unref();
    this.#timer = timer;
  }

  #tick(): void {
    this.#timer = null;
    const bytes = this.check();
    const steady = Math.abs(bytes - this.#lastTickBytes) < STEADY_BYTES;
    this.#lastTickBytes = bytes;
    if (!steady) this.#tickMs = MIN_TICK_MS;
    else if (this.#tickMs < MAX_TICK_MS) this.#tickMs = Math.min(MAX_TICK_MS, this.#tickMs * 2);
    else if (this.#inFlight.size === 0 && pendingTimers() === 0 && !this.#options.busy()) return;
    this.#schedule();
  }

  /** A full collection. `gc` is obtained on first use (a new context costs 2–7 ms). */
  #gc(): void {
    try {
      if (!this.#collect) {
        setFlagsFromString("--expose-gc");
        this.#collect = runInNewContext("gc") as () => void;
      }
      this.#collect();
    } catch {
      // No collection possible: the reading stands as it is.
    }
  }
}

/** V8 heap in use plus `ArrayBuffer` backing stores, in bytes. */
function usedBytes(): number {
  const stats = heapStatistics();
  return stats.used_heap_size + stats.external_memory;
}
