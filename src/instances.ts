/**
 * The live instances of every class: (app, class, object id) → one worker.
 *
 * An instance starts on first use (concurrent first requests share the one start), is
 * stopped after `--idle-timeout` seconds without events, and is stopped on redeploy, env
 * changes, delete and shutdown. At most {@linkcode STOPS_AT_ONCE} stops run at once (each
 * commits, then its thread is terminated by the spawner thread, off the main thread). Storage is
 * never touched by any of this.
 */

import {
  type InstanceInit,
  isStorageFaultCode,
  type LogLevel,
  type StopReason,
  type WireCall,
  type WireError,
  type WireRequest,
  type WireResponse,
  type WorkerEgress,
  type WorkerMessage,
} from "../workers/protocol.ts";
import type { App } from "./apps.ts";
import type { Config } from "./config.ts";
import type { InstanceStorage } from "./instance_storage.ts";
import type { ThreadSpawner } from "./thread_spawner.ts";
import type { Logger } from "./log.ts";
import type { Placement } from "./placement.ts";
import type { ClassRecord, Registry } from "./registry.ts";
import type { UsageMeter } from "./usage.ts";
import type { InstanceSocketHooks } from "./ws_bridge.ts";
import { type Answer, type RequestMessage, WorkerGoneError, WorkerHost } from "./worker_host.ts";
import { WorkerPool } from "./worker_pool.ts";

/**
 * How many instances may be stopping at once. A stop waits up to 2 s for the worker to commit;
 * termination itself runs on the spawner thread, so many can overlap without stalling requests.
 */
const STOPS_AT_ONCE = 16;

/** Which instance an event is for. */
export interface InstanceTarget {
  app: App;
  record: ClassRecord;
  idHex: string;
  /** The instance name (`ctx.id.name`), or null for unique ids. */
  name: string | null;
}

/** An event failed inside the instance or because the instance went away. */
export class InstanceError extends Error {
  override name = "InstanceError";
  readonly wire: WireError;
  constructor(wire: WireError) {
    super(wire.message);
    this.wire = wire;
  }
}

/** One live instance. */
export class Instance {
  readonly key: string;
  readonly target: InstanceTarget;
  readonly host: WorkerHost;
  /** Its memory limit (the class's `limits.memory_mb`, else `--memory-limit-mb`), in bytes. */
  readonly memoryLimitBytes: number;
  /** Heap + `ArrayBuffer` bytes its worker last reported (`workers/memory_guard.ts`). */
  memoryBytes = 0;
  /** Which guard stopped it for memory, if one did (`heap`: the V8 heap cap). */
  memoryStop: MemoryStopCause | null = null;
  lastActive = Date.now();
  #cpuCharged = 0;

  constructor(key: string, target: InstanceTarget, host: WorkerHost, memoryLimitMb: number) {
    this.key = key;
    this.target = target;
    this.host = host;
    this.memoryLimitBytes = memoryLimitMb * 1024 * 1024;
  }

  /** CPU µs used since the last call (what the meter has not seen yet). */
  takeCpuMicros(): number {
    const total = this.host.cpuMicros;
    const delta = total - this.#cpuCharged;
    this.#cpuCharged = total;
    return delta;
  }
}

/**
 * What stopped an instance for memory: the V8 heap cap (`heap`), its own check of heap plus
 * `ArrayBuffer`s (`instance`), or the server's RSS guard (`server`, `src/memory_guard.ts`).
 */
export type MemoryStopCause = "heap" | "instance" | "server";

/**
 * Watches instances without taking part: the name index, the log ring and the metrics hang
 * here. Calls are synchronous and must not throw.
 */
export interface InstanceObserver {
  /** An instance is starting. */
  started(target: InstanceTarget): void;
  /** Object code wrote to its console. */
  log(target: InstanceTarget, level: LogLevel, message: string): void;
  /** Object code used `ms` of thread CPU time. */
  cpu(target: InstanceTarget, ms: number): void;
  /** The instance was stopped for memory (`503 MEMORY_LIMIT_EXCEEDED`). */
  memoryStopped(target: InstanceTarget, cause: MemoryStopCause): void;
}

/**
 * Takes part in what instances ask of the host: alarm changes (the scheduler), resets, and
 * calls to other objects. Installed with {@linkcode InstanceManager.handle}.
 */
export interface InstanceEvents {
  /** The instance set (`at`) or deleted (null) its alarm. */
  alarmSet(target: InstanceTarget, at: number | null): void;
  /** The instance reset itself (`ctx.abort`, a failed `blockConcurrencyWhile`). */
  aborted(target: InstanceTarget, retryAlarm: boolean): void;
  /** The instance called another object through an `env` namespace binding. */
  call(instance: Instance, callId: number, call: WireCall): void;
}

/** Options for {@linkcode InstanceManager}. */
export interface InstanceManagerOptions {
  config: Config;
  registry: Registry;
  storage: InstanceStorage;
  placement: Placement;
  usage: UsageMeter;
  logger: Logger;
  observer?: InstanceObserver;
  /** The egress proxy workers reach the network through (none: no network access). */
  egress?: WorkerEgress | null;
  /** The client WebSockets (`ws_bridge.ts`): socket state for new workers, hibernation. */
  sockets?: InstanceSocketHooks;
  /** Starts the instance workers. */
  spawner: ThreadSpawner;
}

/** Starts, routes to and stops instance workers. */
export class InstanceManager {
  readonly #options: InstanceManagerOptions;
  readonly #live = new Map<string, Instance>();
  readonly #starting = new Map<string, Promise<Instance>>();
  /** Instances held stopped by {@linkcode InstanceManager.withStopped}: starts wait for them. */
  readonly #held = new Map<string, Promise<void>>();
  #stopsRunning = 0;
  /** Stops waiting for a slot; a finishing stop hands its slot to the first. */
  readonly #stopsWaiting: (() => void)[] = [];
  #sweeper: ReturnType<typeof setInterval>;
  /** Idle probes in flight (negative sequence numbers: the socket bridge uses positive ones). */
  readonly #idleProbes = new Map<number, { instance: Instance; lastActive: number }>();
  #idleProbeSeq = 0;
  #closed = false;
  #events: InstanceEvents | null = null;
  /** Booted workers for cold starts (`--warm-workers`); null when disabled. */
  readonly #pool: WorkerPool | null;

  constructor(options: InstanceManagerOptions) {
    this.#options = options;
    this.#pool = options.config.warmWorkers > 0
      ? new WorkerPool({
        size: options.config.warmWorkers,
        host: {
          spawner: options.spawner,
          memoryLimitMb: options.config.memoryLimitMb,
          egress: options.egress,
        },
        spawn: (hostOptions) => new WorkerHost(hostOptions),
      })
      : null;
    const everyMs = Math.min(5_000, Math.max(250, options.config.idleTimeoutSec * 250));
    this.#sweeper = setInterval(() => this.#sweepIdle(), everyMs);
  }

  /** Installs the handler of alarm changes, resets and object-to-object calls. */
  handle(events: InstanceEvents): void {
    this.#events = events;
  }

  /** Live instances (for metrics and inspection). */
  get live(): Iterable<Instance> {
    return this.#live.values();
  }

  /** Delivers an HTTP request and returns the object's response. */
  async fetch(target: InstanceTarget, req: WireRequest): Promise<WireResponse> {
    const answer = await this.request(target, { type: "fetch", req }, req.body ? [req.body] : []);
    if (answer.type !== "response") throw new InstanceError(unexpected(answer));
    return answer.res;
  }

  /** Sends one request event to the target's instance (starting it if needed). */
  async request(
    target: InstanceTarget,
    message: RequestMessage,
    transfer: Transferable[] = [],
  ): Promise<Answer> {
    if (this.#closed) {
      throw new InstanceError({
        name: "Error",
        code: "SHUTTING_DOWN",
        message: "Server is shutting down",
        overloaded: true,
      });
    }
    const instance = await this.#current(target);
    instance.lastActive = Date.now();
    let answer: Answer;
    try {
      answer = await instance.host.request(message, transfer);
    } catch (error) {
      if (error instanceof WorkerGoneError) throw new InstanceError(error.wire);
      throw error;
    } finally {
      instance.lastActive = Date.now();
      this.#chargeCpu(instance);
    }
    if (answer.type === "error") throw new InstanceError(answer.error);
    return answer;
  }

  /** The live instance of `key`, if it has one (never starts one). */
  liveInstance(key: string): Instance | undefined {
    const live = this.#live.get(key);
    return live && !live.host.exited ? live : undefined;
  }

  /** The target's instance, started if needed (socket events are posted to it directly). */
  async acquire(target: InstanceTarget): Promise<Instance> {
    if (this.#closed) throw new Error("Server is shutting down");
    const instance = await this.#current(target);
    instance.lastActive = Date.now();
    return instance;
  }

  /** Stops one live instance (operator eviction, hibernation); false when none was live. */
  async stopInstance(key: string, reason: "evict" | "hibernate"): Promise<boolean> {
    const instance = this.#live.get(key);
    if (!instance) return false;
    this.#live.delete(key);
    await this.#enqueueStops([instance], reason);
    return true;
  }

  /**
   * Terminates an instance for memory at once: it may be spinning, so it is not asked to commit
   * first (uncommitted writes are lost, as in a crash). Its event in flight fails with
   * `503 MEMORY_LIMIT_EXCEEDED`; the next event starts a fresh worker on the same storage.
   */
  stopForMemory(instance: Instance, cause: "instance" | "server", message: string): void {
    if (this.#live.get(instance.key) === instance) this.#live.delete(instance.key);
    instance.memoryStop ??= cause;
    instance.host.terminate({
      name: "Error",
      code: "MEMORY_LIMIT_EXCEEDED",
      message,
      overloaded: true,
    });
  }

  /**
   * Stops the live instances of one class, or of the whole app when `className` is null. They
   * leave the routing table at once, so every new event starts the new version. A delete resolves
   * once they have stopped (their storage is removed next); a redeploy or env change resolves at
   * once and the old instances finish their requests and stop in the background: hundreds of
   * stops under load can take longer than a client waits for its control call.
   */
  stopInstances(
    appId: string,
    className: string | null,
    reason: "redeploy" | "delete",
  ): Promise<void> {
    this.#options.sockets?.closeAll(appId, className, reason);
    const victims = [...this.#live.values()].filter((instance) =>
      instance.target.app.appId === appId &&
      (className === null || instance.target.record.name === className)
    );
    for (const instance of victims) this.#live.delete(instance.key);
    const stopped = this.#enqueueStops(victims, reason);
    if (reason === "delete") return stopped;
    stopped.catch((error) =>
      this.#options.logger.log("error", `Stopping instances after a redeploy failed: ${error}`)
    );
    return Promise.resolve();
  }

  /**
   * Runs `fn` while instance `key` is stopped: its live worker (if any) commits and stops
   * first, and events for it wait until `fn` settles. For replacing or purging its storage.
   */
  withStopped<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#held.get(key) ?? Promise.resolve();
    const run = previous.then(async () => {
      await this.#starting.get(key)?.catch(() => {});
      const live = this.#live.get(key);
      if (live) {
        this.#live.delete(key);
        await this.#enqueueStops([live], "delete");
      }
      return await fn();
    });
    const held = run.then(() => {}, () => {});
    this.#held.set(key, held);
    held.then(() => {
      if (this.#held.get(key) === held) this.#held.delete(key);
    });
    return run;
  }

  /** Stops every instance (shutdown): each commits its storage first. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#options.sockets?.closeAll(null, null, "shutdown");
    clearInterval(this.#sweeper);
    await this.#pool?.close();
    await Promise.allSettled(this.#starting.values());
    const all = [...this.#live.values()];
    this.#live.clear();
    await this.#enqueueStops(all, "shutdown");
  }

  /**
   * The target's instance, skipping one that was stopped while this waited for its start (a
   * redeploy or env change stops instances at once): an event is never sent after the stop.
   */
  async #current(target: InstanceTarget): Promise<Instance> {
    let instance = await this.#instance(target);
    for (let retries = 0; instance.host.stopping && retries < 3; retries++) {
      instance = await this.#instance(target);
    }
    return instance;
  }

  async #instance(target: InstanceTarget): Promise<Instance> {
    const key = instanceKey(target);
    for (let held = this.#held.get(key); held; held = this.#held.get(key)) await held;
    const live = this.#live.get(key);
    if (live && !live.host.exited && !live.host.stopping) return live;
    let starting = this.#starting.get(key);
    if (!starting) {
      starting = this.#start(key, target).finally(() => this.#starting.delete(key));
      this.#starting.set(key, starting);
    }
    return await starting;
  }

  async #start(key: string, target: InstanceTarget): Promise<Instance> {
    const { config, registry, storage, placement } = this.#options;
    await this.#makeRoom();
    await placement.acquire(key);
    const { app, record } = target;
    const memoryLimitMb = record.limits?.memoryMb ?? config.memoryLimitMb;
    const init: InstanceInit = {
      appId: app.appId,
      className: record.name,
      code: record.bundle ?? "",
      exportName: record.className ?? "",
      idHex: target.idHex,
      name: target.name,
      dbPath: await storage.dbPath(app.appId, record.name, target.idHex),
      env: registry.env(app),
      bindings: registry.bindings(app.appId),
      maxKeyBytes: config.maxKeyBytes,
      maxValueBytes: config.maxValueBytes,
      maxStorageBytes: config.maxStorageBytes,
      ...(this.#options.sockets?.initFor(key) ??
        { sockets: [], autoResponse: null, eventTimeoutMs: null, nextSockId: 1 }),
      blockTimeoutMs: config.blockTimeoutMs,
      memoryLimitMb,
    };
    this.#options.observer?.started(target);
    const hostOptions = {
      spawner: this.#options.spawner,
      memoryLimitMb,
      cpuLimitMs: record.limits?.cpuMs ?? config.cpuLimitMs,
      egress: this.#options.egress,
    };
    const host = this.#pool?.take(hostOptions) ?? new WorkerHost(hostOptions);
    const instance = new Instance(key, target, host, memoryLimitMb);
    host.init(init, {
      onMessage: (message) => this.#onMessage(instance, message),
      onExit: (error) => {
        if (this.#live.get(key) === instance) this.#live.delete(key);
        this.#options.sockets?.onExit(instance, error);
        if (error?.code === "MEMORY_LIMIT_EXCEEDED") {
          this.#options.observer?.memoryStopped(target, instance.memoryStop ?? "heap");
        }
        if (error) {
          this.#log(instance, "warn", `Instance stopped: ${error.message}`, { code: error.code });
        }
      },
    });
    this.#live.set(key, instance);
    return instance;
  }

  #onMessage(instance: Instance, message: WorkerMessage): void {
    switch (message.type) {
      case "log":
        this.#log(instance, message.level, message.message, { source: "object" });
        this.#options.observer?.log(instance.target, message.level, message.message);
        return;
      case "init-error": {
        // The instance's database could not be opened (corrupt, locked): not the class's fault.
        const storage = isStorageFaultCode(message.error.code);
        const code = storage ? message.error.code : "MODULE_LOAD_FAILED";
        const what = storage ? "Instance storage failed to open" : "Class failed to load";
        this.#log(instance, "error", `${what}: ${message.error.message}`, { code });
        this.#live.delete(instance.key);
        instance.host.terminate({ ...message.error, code });
        return;
      }
      case "abort":
        this.#live.delete(instance.key);
        this.#events?.aborted(instance.target, message.retryAlarm);
        instance.host.terminate({
          name: "Error",
          code: message.code ?? "OBJECT_RESET",
          message: message.reason,
          reset: true,
          overloaded: message.overloaded,
        });
        return;
      case "memory":
        instance.memoryBytes = message.bytes;
        if (message.exceeded) {
          const [used, limit] = [message.bytes, instance.memoryLimitBytes].map(megabytes);
          this.stopForMemory(
            instance,
            "instance",
            `Durable Object exceeded its memory limit of ${limit} MB (heap and buffers: ` +
              `${used} MB) and was reset`,
          );
        }
        return;
      case "alarm-set":
        this.#events?.alarmSet(instance.target, message.at);
        return;
      case "call":
        this.#events?.call(instance, message.callId, message.call);
        return;
      case "ws-idle":
        if (this.#idleProbes.has(message.seq)) this.#idleAnswer(message.seq, message.idle);
        else this.#options.sockets?.onMessage(instance, message);
        return;
      case "ws-out":
        this.#options.sockets?.onMessage(instance, message);
        return;
      default:
        return;
    }
  }

  /** Keeps the number of live instances under `--max-instances` (least recently used first). */
  async #makeRoom(): Promise<void> {
    const { maxInstances } = this.#options.config;
    const excess = this.#live.size + 1 - maxInstances;
    if (excess <= 0) return;
    // Only instances with no event in flight are evicted: stopping a busy one would fail its
    // callers. When every live instance is busy, the new one is refused instead.
    const victims = [...this.#live.values()]
      .filter((instance) => instance.host.pending === 0)
      .sort((a, b) => a.lastActive - b.lastActive)
      .slice(0, excess);
    if (victims.length < excess) {
      throw new InstanceError({
        name: "Error",
        code: "MAX_INSTANCES_EXCEEDED",
        message: `Too many live Durable Object instances on this server (--max-instances ` +
          `${maxInstances}) and all of them are busy; try again later`,
        overloaded: true,
      });
    }
    for (const victim of victims) this.#live.delete(victim.key);
    await this.#enqueueStops(victims, "evict");
  }

  /**
   * Stops instances idle for `--idle-timeout`. A candidate is first asked whether anything
   * still runs inside it (a pending timer, `waitUntil`, an uncommitted write): on Cloudflare a
   * scheduled callback keeps an object in memory, so only an instance that answers "idle" and
   * saw no event since the question is stopped.
   */
  #sweepIdle(): void {
    for (const [seq, probe] of this.#idleProbes) {
      if (probe.instance.host.exited) this.#idleProbes.delete(seq);
    }
    const probed = new Set([...this.#idleProbes.values()].map((probe) => probe.instance));
    for (const instance of this.#live.values()) {
      if (!this.#isIdle(instance) || probed.has(instance)) continue;
      const seq = --this.#idleProbeSeq;
      this.#idleProbes.set(seq, { instance, lastActive: instance.lastActive });
      instance.host.post({ type: "ws-probe", seq });
    }
  }

  #isIdle(instance: Instance): boolean {
    const cutoff = Date.now() - this.#options.config.idleTimeoutSec * 1000;
    return instance.host.pending === 0 && instance.lastActive < cutoff &&
      !this.#options.sockets?.holds(instance.key);
  }

  /** The answer to an idle probe of {@linkcode InstanceManager.#sweepIdle}. */
  #idleAnswer(seq: number, idle: boolean): void {
    const probe = this.#idleProbes.get(seq);
    this.#idleProbes.delete(seq);
    if (!probe || !idle) return;
    const { instance, lastActive } = probe;
    if (this.#live.get(instance.key) !== instance || instance.lastActive !== lastActive) return;
    if (!this.#isIdle(instance)) return;
    this.#live.delete(instance.key);
    this.#enqueueStops([instance], "idle");
  }

  /** Stops instances, at most {@linkcode STOPS_AT_ONCE} at a time across all callers. */
  async #enqueueStops(
    instances: Instance[],
    reason: StopReason,
  ): Promise<void> {
    await Promise.all(instances.map((instance) => this.#stopOne(instance, reason)));
  }

  async #stopOne(instance: Instance, reason: StopReason): Promise<void> {
    if (this.#stopsRunning < STOPS_AT_ONCE) this.#stopsRunning++;
    else await new Promise<void>((go) => this.#stopsWaiting.push(go));
    try {
      await instance.host.stop(reason);
      this.#chargeCpu(instance);
    } finally {
      const next = this.#stopsWaiting.shift();
      if (next) next();
      else this.#stopsRunning--;
    }
  }

  #chargeCpu(instance: Instance): void {
    const micros = instance.takeCpuMicros();
    if (micros > 0) {
      const { app, record } = instance.target;
      this.#options.usage.addCpu(app.appId, record.name, micros / 1000, instance.target.idHex);
      this.#options.observer?.cpu(instance.target, micros / 1000);
    }
  }

  #log(
    instance: Instance,
    level: "debug" | "info" | "warn" | "error",
    message: string,
    fields: Record<string, string> = {},
  ): void {
    const { app, record, name, idHex } = instance.target;
    this.#options.logger.log(level, message, {
      app: app.appId,
      class: record.name,
      instance: name ?? idHex,
      ...fields,
    });
  }
}

/** Bytes in whole megabytes (MiB), for messages. */
function megabytes(bytes: number): number {
  return Math.round(bytes / (1024 * 1024));
}

/** The map key of an instance. */
export function instanceKey(target: InstanceTarget): string {
  return keyOf(target.app.appId, target.record.name, target.idHex);
}

/** The map key of instance `idHex` of class `className` in app `appId`. */
export function keyOf(appId: string, className: string, idHex: string): string {
  return `${appId}/${className}/${idHex}`;
}

function unexpected(answer: Answer): WireError {
  return { name: "Error", code: "INTERNAL", message: `Unexpected answer "${answer.type}"` };
}
