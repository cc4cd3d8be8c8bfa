/**
 * A few instance workers started ahead of need, so a cold start skips the thread spawn.
 *
 * Starting a `node:worker_threads` worker and booting the runtime in it (isolate, Deno's
 * bootstrap, the worker's module graph, the Web Lock) costs tens to hundreds of milliseconds,
 * most of a cold start. A pooled worker has done all of that, has run a throwaway instance
 * (`workers/warm_up.ts`), and waits for its `init`; what is left for a new instance is compiling
 * its class and opening its database: about 10–13 ms from the request to the answer, measured end
 * to end. Workers are instance-agnostic until `init`, so any of them can become any instance whose
 * limits match the pool's.
 *
 * Workers are started by the spawner threads (`src/thread_spawner.ts`), so refilling never
 * blocks the main thread; a take starts its replacement shortly after. A worker is handed out even
 * before it has finished booting: its `init` waits in its message queue, which is still sooner
 * than a fresh spawn.
 */

import type { WorkerHost, WorkerHostOptions } from "./worker_host.ts";

/** What decides whether a pooled worker fits an instance: its heap cap and network access. */
export type PoolKey = Pick<WorkerHostOptions, "memoryLimitMb" | "cpuLimitMs" | "egress">;

/** How long after a take the pool starts refilling. */
export const REFILL_DELAY_MS = 50;

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
  #closed = false;
  #refillTimer: ReturnType<typeof setTimeout> | null = null;
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
  take(options: PoolKey): WorkerHost | null {
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

  #matches(options: PoolKey): boolean {
    const pooled = this.#options.host;
    return options.memoryLimitMb === pooled.memoryLimitMb &&
      (options.egress ?? null) === (pooled.egress ?? null);
  }

  /**
   * Refills {@linkcode REFILL_DELAY_MS} after a take: a spawn keeps a core busy for about as
   * long as a cold start takes, so it waits until the instance that took the worker is up.
   */
  #scheduleRefill(): void {
    if (this.#refillTimer !== null || this.#closed) return;
    this.#refillTimer = setTimeout(() => {
      this.#refillTimer = null;
      this.#refill();
    }, REFILL_DELAY_MS);
  }

  /** Starts workers until the pool is full again. */
  #refill(): void {
    while (!this.#closed && this.#idle.length < this.#options.size) {
      const host = this.#options.spawn({ ...this.#options.host, cpuLimitMs: undefined });
      this.#spawned++;
      host.init(null, {
        onMessage: () => {},
        onExit: () => {
          const at = this.#idle.indexOf(host);
          if (at >= 0) this.#idle.splice(at, 1);
        },
      });
      this.#idle.push(host);
    }
  }
}
