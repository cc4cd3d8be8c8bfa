/**
 * A few instance workers started ahead of need, so a cold start skips the thread spawn.
 *
 * Spawning a `node:worker_threads` worker and booting the runtime in it (isolate, Deno's
 * bootstrap, the worker's module graph, the Web Lock) costs tens to hundreds of milliseconds,
 * most of a cold start. A pooled worker has done all of that and waits for its `init`; what is
 * left for a new instance is loading its class (`data:` URL) and opening its database: about
 * 12–15 ms to the first answer, measured. Workers are instance-agnostic until `init`, so any of
 * them can become any instance whose limits match the pool's.
 *
 * Creating a worker also blocks the calling thread: in Deno 2.9 `new Worker()` returns only after
 * 60–300 ms (a trivial worker too), and the main thread serves every request. So the pool never
 * spawns inside a request: a take schedules the refill {@linkcode REFILL_DELAY_MS} later, when the
 * request that took the worker has had time to finish, and spawns one at a time, spaced the same
 * way. A worker is handed out even before it has finished booting: its `init` waits in its message
 * queue, which is still sooner than a fresh spawn.
 */

import type { WorkerHost, WorkerHostOptions } from "./worker_host.ts";

/** A spawn that has not booted after this long no longer holds up the next one. */
const BOOT_TIMEOUT_MS = 10_000;
/** How long after a take (or a finished spawn) the next spawn waits. */
export const REFILL_DELAY_MS = 100;

/** Options for {@linkcode WorkerPool}. */
export interface WorkerPoolOptions {
  /** How many idle workers to keep (0 disables the pool). */
  size: number;
  /** The options every pooled worker is spawned with (no CPU limit: that is set on take). */
  host: WorkerHostOptions;
  /** Spawns one worker (the pool never calls `new WorkerHost` itself). */
  spawn(options: WorkerHostOptions): WorkerHost;
}

/** Idle, booted (or booting) workers waiting to become instances. */
export class WorkerPool {
  readonly #options: WorkerPoolOptions;
  readonly #idle: WorkerHost[] = [];
  #refilling = false;
  #refillTimer: ReturnType<typeof setTimeout> | null = null;
  #closed = false;
  #taken = 0;
  #spawned = 0;

  constructor(options: WorkerPoolOptions) {
    this.#options = options;
    this.#refill();
  }

  /** Workers waiting now. */
  get idle(): number {
    return this.#idle.length;
  }

  /** Counters for metrics and the benchmark: how many were handed out and spawned. */
  get stats(): { taken: number; spawned: number; idle: number } {
    return { taken: this.#taken, spawned: this.#spawned, idle: this.#idle.length };
  }

  /**
   * A pooled worker for an instance with these options, or null when the pool is empty or the
   * options differ from the pool's (per-class limits); the caller then spawns one itself.
   */
  take(options: WorkerHostOptions): WorkerHost | null {
    if (this.#closed || !this.#matches(options)) return null;
    let host = this.#idle.shift();
    while (host?.exited) host = this.#idle.shift();
    this.#scheduleRefill();
    if (!host) return null;
    this.#taken++;
    if (options.cpuLimitMs !== undefined) host.limitCpu(options.cpuLimitMs);
    return host;
  }

  /** Terminates the idle workers and stops refilling. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#refillTimer !== null) clearTimeout(this.#refillTimer);
    const idle = this.#idle.splice(0);
    for (const host of idle) await host.terminate();
  }

  #matches(options: WorkerHostOptions): boolean {
    const pooled = this.#options.host;
    return options.memoryLimitMb === pooled.memoryLimitMb &&
      (options.egress ?? null) === (pooled.egress ?? null);
  }

  /** Refills after {@linkcode REFILL_DELAY_MS} (once; later calls join the pending timer). */
  #scheduleRefill(): void {
    if (this.#refillTimer !== null || this.#closed) return;
    this.#refillTimer = setTimeout(() => {
      this.#refillTimer = null;
      this.#refill();
    }, REFILL_DELAY_MS);
  }

  /** Spawns workers one at a time until the pool is full. */
  #refill(): void {
    if (this.#refilling || this.#closed) return;
    if (this.#idle.length >= this.#options.size) return;
    this.#refilling = true;
    const host = this.#options.spawn({ ...this.#options.host, cpuLimitMs: undefined });
    this.#spawned++;
    const exited = Promise.withResolvers<void>();
    host.init(null, {
      onMessage: () => {},
      onExit: () => {
        const at = this.#idle.indexOf(host);
        if (at >= 0) this.#idle.splice(at, 1);
        exited.resolve();
      },
    });
    this.#idle.push(host);
    // Booted, died while idle, or (taken, then died before booting) given up on after a while.
    let timer: ReturnType<typeof setTimeout> | undefined;
    Promise.race([
      host.booted,
      exited.promise,
      new Promise<void>((resolve) => timer = setTimeout(resolve, BOOT_TIMEOUT_MS)),
    ]).finally(() => {
      clearTimeout(timer);
      this.#refilling = false;
      if (this.#closed) {
        const at = this.#idle.indexOf(host);
        if (at >= 0) {
          this.#idle.splice(at, 1);
          host.terminate();
        }
        return;
      }
      this.#scheduleRefill();
    });
  }
}
