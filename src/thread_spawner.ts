/**
 * Starts worker threads without blocking the main thread, through spawner threads
 * (`src/spawner_thread.ts`).
 *
 * The main thread creates a `MessageChannel`, keeps one port and sends the other along with the
 * spawn command; the new worker receives it as `workerData.port`. From then on messages flow
 * directly between the main thread and the worker; only control (terminate, CPU readings) and
 * lifecycle events (error, exit) go through the spawner.
 *
 * A worker that exits by itself (a crash) counts as gone once the spawner reported its exit *and*
 * its port closed: the port closes after every message the worker sent has been delivered, so an
 * answer posted just before a crash is never overtaken by the exit. A terminated worker is gone at
 * its exit: whatever it had not delivered is not wanted any more.
 */

import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import type { SpawnerCommand, SpawnerEvent, ThreadError, ThreadLimits } from "./spawner_thread.ts";

export type { ThreadError };

const SPAWNER_ENTRY = new URL("./spawner_thread.ts", import.meta.url);
/** Spawns run one at a time per spawner; two let a 2-core machine overlap them (measured). */
const SPAWNERS = 2;
/** How long after its exit a worker's port may take to report closing. */
const PORT_CLOSE_GRACE_MS = 1_000;

/** What a spawned worker reports besides its messages. */
export interface ThreadEvents {
  /** The worker failed (uncaught error, out of memory); `onExit` follows. */
  onError(error: ThreadError): void;
  /** The worker is gone and every message it sent has been delivered. */
  onExit(): void;
}

/** One spawner thread and the workers it started. */
class Spawner {
  readonly #worker: Worker;
  readonly threads = new Map<number, SpawnedThread>();
  readonly #cpuReads = new Map<number, (micros: number | null) => void>();
  #nextSeq = 1;
  #dead = false;
  readonly exited: Promise<void>;

  constructor() {
    this.#worker = new Worker(SPAWNER_ENTRY);
    this.#worker.on("message", (event: SpawnerEvent) => this.#receive(event));
    this.#worker.on("error", () => {});
    this.exited = new Promise((resolve) => {
      this.#worker.on("exit", () => {
        this.#dead = true;
        for (const thread of this.threads.values()) {
          thread.failed({
            name: "Error",
            code: "SPAWNER_EXITED",
            message: "the thread that started this worker exited",
          });
          thread.exited();
        }
        this.threads.clear();
        for (const settle of this.#cpuReads.values()) settle(null);
        this.#cpuReads.clear();
        resolve();
      });
    });
  }

  get dead(): boolean {
    return this.#dead;
  }

  send(command: SpawnerCommand, transfer: MessagePort[] = []): void {
    if (!this.#dead) this.#worker.postMessage(command, transfer);
  }

  cpu(id: number): Promise<number | null> {
    if (this.#dead) return Promise.resolve(null);
    const seq = this.#nextSeq++;
    return new Promise((resolve) => {
      this.#cpuReads.set(seq, resolve);
      this.send({ type: "cpu", id, seq });
    });
  }

  terminate(): Promise<number> {
    return this.#worker.terminate();
  }

  #receive(event: SpawnerEvent): void {
    switch (event.type) {
      case "cpu": {
        const settle = this.#cpuReads.get(event.seq);
        this.#cpuReads.delete(event.seq);
        settle?.(event.micros);
        return;
      }
      case "error":
        this.threads.get(event.id)?.failed(event.error);
        return;
      case "exit": {
        const thread = this.threads.get(event.id);
        this.threads.delete(event.id);
        thread?.exited();
        return;
      }
    }
  }
}

/** A worker thread started by a spawner: its port, plus control through the spawner. */
export class SpawnedThread {
  /** The main thread's end of the channel to the worker. */
  readonly port: MessagePort;
  readonly #id: number;
  readonly #spawner: Spawner;
  readonly #events: ThreadEvents;
  #exitReported = false;
  #portClosed = false;
  #terminating = false;
  /** The worker was told to end its own thread: its port closing means it is gone. */
  #ending = false;
  #gone = false;
  #graceTimer: ReturnType<typeof setTimeout> | null = null;
  readonly #gonePromise: Promise<void>;
  #resolveGone!: () => void;

  constructor(id: number, spawner: Spawner, port: MessagePort, events: ThreadEvents) {
    this.#id = id;
    this.#spawner = spawner;
    this.port = port;
    this.#events = events;
    this.#gonePromise = new Promise((resolve) => this.#resolveGone = resolve);
    port.on("close", () => {
      this.#portClosed = true;
      this.#settle();
    });
  }

  /**
   * Ends the worker at once (preempts running code); resolves when it is gone. Whatever it had
   * not delivered yet is dropped, so its exit does not wait for the port to close.
   */
  terminate(): Promise<void> {
    this.#terminating = true;
    if (!this.#gone && !this.#exitReported) this.#spawner.send({ type: "terminate", id: this.#id });
    return this.#gonePromise;
  }

  /**
   * For a worker that ends its own thread (it answered `stop`): resolves once its port closed,
   * which happens after everything it sent was delivered. The spawner's exit report is not
   * waited for: under load it queues behind worker constructions for seconds. A worker whose port
   * has not closed within {@linkcode PORT_CLOSE_GRACE_MS} is terminated.
   */
  ended(): Promise<void> {
    this.#ending = true;
    this.#settle();
    if (!this.#gone) {
      const timer = setTimeout(() => this.terminate(), PORT_CLOSE_GRACE_MS);
      this.#gonePromise.then(() => clearTimeout(timer));
    }
    return this.#gonePromise;
  }

  /** The worker thread's CPU time in µs (null once it is gone). */
  cpuMicros(): Promise<number | null> {
    if (this.#exitReported) return Promise.resolve(null);
    return this.#spawner.cpu(this.#id);
  }

  /** @internal The spawner reported an error event. */
  failed(error: ThreadError): void {
    if (!this.#gone) this.#events.onError(error);
  }

  /** @internal The spawner reported the exit. */
  exited(): void {
    if (this.#exitReported || this.#gone) return;
    this.#exitReported = true;
    if (this.#terminating) this.#portClosed = true;
    // The port normally closes at once; do not wait for it forever.
    this.#graceTimer = setTimeout(() => {
      this.#portClosed = true;
      this.#settle();
    }, PORT_CLOSE_GRACE_MS);
    this.#settle();
  }

  #settle(): void {
    if (this.#gone || !(this.#exitReported || this.#ending) || !this.#portClosed) return;
    this.#gone = true;
    if (this.#graceTimer !== null) clearTimeout(this.#graceTimer);
    this.port.close();
    this.#events.onExit();
    this.#resolveGone();
  }
}

/** Options of one spawn. */
export interface SpawnOptions {
  /** The worker's module (a `file:` URL, embedded in a compiled binary with `--include`). */
  entry: URL;
  limits: ThreadLimits;
  /** Cloneable data for the worker (`workerData`, plus `port`). */
  data: Record<string, unknown>;
  events: ThreadEvents;
}

/** Owns the spawner threads; one per server. */
export class ThreadSpawner {
  readonly #spawners: Spawner[] = [];
  #nextId = 1;
  #closed = false;

  /** Starts a worker on the spawner with the fewest live workers. */
  spawn(options: SpawnOptions): SpawnedThread {
    if (this.#closed) throw new Error("the thread spawner is closed");
    const spawner = this.#pick();
    const id = this.#nextId++;
    const { port1, port2 } = new MessageChannel();
    const thread = new SpawnedThread(id, spawner, port1, options.events);
    spawner.threads.set(id, thread);
    spawner.send({
      type: "spawn",
      id,
      entry: options.entry.href,
      limits: options.limits,
      data: options.data,
      port: port2,
    }, [port2]);
    return thread;
  }

  /**
   * Ends the spawner threads. Their workers should have been terminated first (the instance
   * manager does that); any left are terminated here.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const spawners = this.#spawners.splice(0);
    await Promise.all(spawners.map(async (spawner) => {
      await Promise.all([...spawner.threads.values()].map((thread) => thread.terminate()));
      await spawner.terminate();
      await spawner.exited;
    }));
  }

  #pick(): Spawner {
    const alive = this.#spawners.filter((spawner) => !spawner.dead);
    while (alive.length < SPAWNERS) alive.push(new Spawner());
    this.#spawners.splice(0, this.#spawners.length, ...alive);
    return alive.reduce((best, spawner) =>
      spawner.threads.size < best.threads.size ? spawner : best
    );
  }
}
