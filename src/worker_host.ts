/**
 * One instance worker seen from the host: spawn, typed messages, request/answer matching,
 * termination. The only place that starts instance workers and posts to them.
 *
 * Workers are `node:worker_threads` workers, not Web Workers: in Deno 2.9 only they accept a
 * heap cap (`resourceLimits`) and, once the bootstrap holds a Web Lock, are preempted by
 * `terminate()` even in `while (true) {}`. They are started by a spawner thread
 * ({@linkcode ThreadSpawner}) so that the main thread never blocks on `new Worker()`; messages
 * go directly over the worker's own port, those of one turn as one batch (`workers/outbox.ts`).
 */

import type {
  HostMessage,
  InstanceInit,
  StopReason,
  WireError,
  WireSocketOp,
  WorkerEgress,
  WorkerMessage,
} from "../workers/protocol.ts";
import { Outbox } from "../workers/outbox.ts";
import { listen } from "../workers/port_listener.ts";
import { CpuWatchdog } from "./cpu_watchdog.ts";
import type { SpawnedThread, ThreadSpawner } from "./thread_spawner.ts";

const ENTRY = new URL("../workers/entry.ts", import.meta.url);
/** How long `terminate()` waits for a booting worker before terminating it anyway. */
const BOOT_WAIT_MS = 10_000;
/** How long an idle probe may go unanswered before the CPU limit applies to the worker. */
const PROBE_ANSWER_MS = 1_000;
/** How long a stopping worker gets to commit and close before it is terminated. */
const STOP_GRACE_MS = 2_000;

/** The answers a request can get. */
export type Answer = Extract<
  WorkerMessage,
  { type: "response" | "rpc-result" | "alarm-result" | "error" }
>;

/** A request message without its id (the host assigns ids). */
export type RequestMessage =
  | Omit<Extract<HostMessage, { type: "fetch" }>, "reqId">
  | Omit<Extract<HostMessage, { type: "alarm" }>, "reqId">
  | Omit<Extract<HostMessage, { type: "rpc" }>, "reqId">;

interface Settle {
  resolve(answer: Answer): void;
  reject(error: WorkerGoneError): void;
}

/** Thrown to pending requests when the worker goes away before answering. */
export class WorkerGoneError extends Error {
  override name = "WorkerGoneError";
  readonly wire: WireError;
  constructor(wire: WireError) {
    super(wire.message);
    this.wire = wire;
  }
}

/** Callbacks for messages that are not answers. */
export interface WorkerHostHandlers {
  /** Any message that is not an answer to a request. */
  onMessage(message: WorkerMessage): void;
  /** The worker is gone (stopped, crashed, terminated); `error` says why if it failed. */
  onExit(error: WireError | null): void;
}

/** Options for {@linkcode WorkerHost}. */
export interface WorkerHostOptions {
  /** Starts the worker thread (one per server). */
  spawner: ThreadSpawner;
  memoryLimitMb: number;
  /** CPU ms one event may use before the worker is terminated; unset for no limit. */
  cpuLimitMs?: number;
  /** The egress proxy; without it the worker has no network access. */
  egress?: WorkerEgress | null;
}

/** A spawned instance worker. */
export class WorkerHost {
  readonly #thread: SpawnedThread;
  readonly #gone: Promise<void>;
  #threadId: number | null = null;
  readonly #pending = new Map<number, Settle>();
  #handlers: WorkerHostHandlers | null = null;
  #nextId = 1;
  #exited = false;
  #exitError: WireError | null = null;
  #stopping: Promise<void> | null = null;
  #onStopped: (() => void) | null = null;
  /** Set while a stop waits for the requests in flight to be answered. */
  #onDrained: (() => void) | null = null;
  /** The thread's CPU clock, in µs, as last reported (boot included). */
  #cpuMicros = 0;
  /** The clock when the worker was ready: its boot and warm-up are not the instance's CPU. */
  #bootCpuMicros = 0;
  #ready: Promise<void>;
  #onReady: () => void = () => {};
  readonly #outbox: Outbox<HostMessage>;
  #watchdog: CpuWatchdog | null = null;
  /** `ws-message`s posted that the worker has not acked yet (see the CPU watchdog). */
  #wsUnacked = 0;
  /** Idle probes (`ws-probe`) not answered yet: a worker spinning in a timer never answers. */
  #probesUnanswered = 0;
  #probeTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(options: WorkerHostOptions) {
    let gone!: () => void;
    this.#gone = new Promise((resolve) => gone = resolve);
    this.#thread = options.spawner.spawn({
      entry: ENTRY,
      limits: {
        maxOldGenerationSizeMb: options.memoryLimitMb,
        maxYoungGenerationSizeMb: Math.max(4, Math.floor(options.memoryLimitMb / 8)),
      },
      data: { egress: options.egress ?? null },
      events: {
        onError: (error) => {
          this.#exitError = error.code === "ERR_WORKER_OUT_OF_MEMORY"
            ? {
              name: "Error",
              code: "MEMORY_LIMIT_EXCEEDED",
              message: "Durable Object exceeded its memory limit and was reset",
              overloaded: true,
            }
            : { name: error.name, code: "WORKER_CRASHED", message: error.message };
        },
        onExit: () => {
          this.#exit();
          gone();
        },
      },
    });
    if (options.cpuLimitMs !== undefined) this.#watchdog = this.#cpuWatchdog(options.cpuLimitMs);
    const port = this.#thread.port;
    this.#ready = new Promise((resolve) => this.#onReady = resolve);
    this.#outbox = new Outbox((message, transfer) => {
      if (!this.#exited) port.postMessage(message, transfer as never[]);
    });
    listen<WorkerMessage>(port, (message) => this.#receive(message));
  }

  /** Resolves once the bootstrap finished (the warm-pool state). */
  get booted(): Promise<void> {
    return this.#ready;
  }

  /** The worker's thread id once booted: its OS thread is named `worker-<threadId>`. */
  get threadId(): number | null {
    return this.#threadId;
  }

  /** Sets the per-event CPU limit of a worker spawned without one (a pooled worker). */
  limitCpu(limitMs: number): void {
    this.#watchdog ??= this.#cpuWatchdog(limitMs);
  }

  /** Installs the handlers for its messages and hands the worker its instance (if any). */
  init(init: InstanceInit | null, handlers: WorkerHostHandlers): void {
    this.#handlers = handlers;
    if (init) this.post({ type: "init", init });
  }

  /** Sends a message that expects no answer. */
  post(message: HostMessage, transfer: Transferable[] = []): void {
    if (this.#exited) return;
    this.#outbox.post(message, transfer);
    if (message.type === "ws-message") {
      // Socket messages are events too: the CPU limit applies until the worker acks them.
      this.#wsUnacked++;
      this.#watchdog?.busy();
    } else if (message.type === "ws-probe") {
      // An idle-looking worker may still run code (a timer after its response): if it does not
      // answer soon, the CPU limit applies until it does, so a loop there is stopped too.
      // (Sampling every probed worker at once would flood the spawner threads with CPU reads.)
      this.#probesUnanswered++;
      this.#probeTimer ??= setTimeout(() => {
        this.#probeTimer = null;
        if (this.#probesUnanswered > 0) this.#watchdog?.busy();
      }, PROBE_ANSWER_MS);
    }
  }

  /** Sends a request and resolves with the worker's answer (or a `WorkerGoneError`). */
  request(message: RequestMessage, transfer: Transferable[] = []): Promise<Answer> {
    if (this.#exited) return Promise.reject(new WorkerGoneError(this.#goneError()));
    const reqId = this.#nextId++;
    return new Promise<Answer>((resolve, reject) => {
      this.#pending.set(reqId, { resolve, reject });
      this.post({ ...message, reqId } as HostMessage, transfer);
      this.#watchdog?.busy();
    });
  }

  /**
   * The instance's CPU time in µs (its thread's since boot), read on the host: works while the
   * worker is busy.
   */
  async threadCpuMicros(): Promise<number> {
    return Math.max(0, (await this.#threadClock()) - this.#bootCpuMicros);
  }

  /** Requests in flight. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Cumulative CPU time the worker reported since boot, in µs. */
  get cpuMicros(): number {
    return Math.max(0, this.#cpuMicros - this.#bootCpuMicros);
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** True once `stop()` was called: the worker is committing and takes no new events. */
  get stopping(): boolean {
    return this.#stopping !== null;
  }

  /**
   * Lets the requests in flight finish, then asks the worker to commit, close and end its
   * thread; a worker that has not answered within {@linkcode STOP_GRACE_MS} is terminated. No
   * new event is sent once this is called.
   */
  stop(reason: StopReason): Promise<void> {
    this.#stopping ??= (async () => {
      if (this.#exited) return;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => timer = setTimeout(resolve, STOP_GRACE_MS));
      if (this.#pending.size > 0) {
        await Promise.race([new Promise<void>((resolve) => this.#onDrained = resolve), grace]);
      }
      const stopped = new Promise<boolean>((resolve) => this.#onStopped = () => resolve(true));
      this.post({ type: "stop", reason });
      // A worker that stopped ends its own thread; one that did not answer is terminated.
      const ended = await Promise.race([stopped, grace.then(() => false)]);
      clearTimeout(timer);
      if (ended) await this.#thread.ended();
      await this.terminate();
    })();
    return this.#stopping;
  }

  /**
   * Ends the worker at once (preempts running code). A worker still booting is first allowed
   * to finish its bootstrap: Deno 2.9.6 panics (and takes the whole process down) when a
   * worker is terminated while its runtime is still loading its built-in modules.
   */
  async terminate(error?: WireError): Promise<void> {
    if (error) this.#exitError ??= error;
    if (!this.#exited) {
      await this.#bootedOrExited();
      if (!this.#exited) await this.#thread.terminate();
    }
    this.#exit();
  }

  async #bootedOrExited(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#ready,
      this.#gone,
      new Promise<void>((resolve) => timer = setTimeout(resolve, BOOT_WAIT_MS)),
    ]);
    clearTimeout(timer);
  }

  #receive(message: WorkerMessage): void {
    if (message.type === "ws-out") this.#socketProgress(message.ops);
    switch (message.type) {
      case "ready":
        this.#threadId = message.threadId;
        this.#bootCpuMicros = message.cpu;
        this.#onReady();
        return;
      case "response":
      case "rpc-result":
      case "alarm-result":
      case "error": {
        this.#cpuMicros = Math.max(this.#cpuMicros, message.cpu);
        const settle = this.#pending.get(message.reqId);
        this.#pending.delete(message.reqId);
        this.#watchdog?.progress();
        this.#idleIfQuiet();
        settle?.resolve(message);
        if (this.#pending.size === 0) this.#onDrained?.();
        return;
      }
      case "ws-idle":
        this.#probesUnanswered = Math.max(0, this.#probesUnanswered - 1);
        if (this.#probesUnanswered === 0 && this.#probeTimer !== null) {
          clearTimeout(this.#probeTimer);
          this.#probeTimer = null;
        }
        this.#watchdog?.progress();
        this.#idleIfQuiet();
        this.#handlers?.onMessage(message);
        return;
      case "stopped":
        this.#onStopped?.();
        return;
      default:
        this.#handlers?.onMessage(message);
    }
  }

  #goneError(): WireError {
    return this.#exitError ??
      { name: "Error", code: "WORKER_GONE", message: "Durable Object instance was stopped" };
  }

  /** A `ws-out` batch ends a turn of the worker: socket events it acks are done. */
  #socketProgress(ops: WireSocketOp[]): void {
    for (const op of ops) if (op.op === "ack") this.#wsUnacked -= op.count;
    this.#wsUnacked = Math.max(0, this.#wsUnacked);
    this.#watchdog?.progress();
    this.#idleIfQuiet();
  }

  /** Stops CPU sampling once nothing sent to the worker is waiting for it. */
  #idleIfQuiet(): void {
    if (this.#pending.size === 0 && this.#wsUnacked === 0 && this.#probesUnanswered === 0) {
      this.#watchdog?.idle();
    }
  }

  /** The thread's CPU clock in µs (boot included), or the last reported value. */
  async #threadClock(): Promise<number> {
    return (await this.#thread.cpuMicros()) ?? this.#cpuMicros;
  }

  #cpuWatchdog(limitMs: number): CpuWatchdog {
    return new CpuWatchdog({
      limitMs,
      read: () => this.#threadClock(),
      onSample: (micros) => this.#cpuMicros = Math.max(this.#cpuMicros, micros),
      onExceeded: () => {
        this.terminate({
          name: "Error",
          code: "CPU_LIMIT_EXCEEDED",
          message: `Durable Object exceeded its CPU time limit of ${limitMs} ms and was reset`,
          overloaded: true,
        });
      },
    });
  }

  #exit(): void {
    if (this.#exited) return;
    this.#watchdog?.stop();
    if (this.#probeTimer !== null) clearTimeout(this.#probeTimer);
    this.#exited = true;
    const error = this.#goneError();
    for (const settle of this.#pending.values()) settle.reject(new WorkerGoneError(error));
    this.#pending.clear();
    this.#handlers?.onExit(this.#exitError);
  }
}
