/**
 * The live instances of every class: (app, class, object id) → one worker.
 *
 * An instance starts on first use (concurrent first requests share the one start), is
 * stopped after `--idle-timeout` seconds without events, and is stopped on redeploy, env
 * changes, delete and shutdown. Stops run one at a time: terminating many workers at once
 * stalls Deno's event loop. Storage is never touched by any of this.
 */

import {
  type InstanceInit,
  type WireError,
  type WireRequest,
  type WireResponse,
  type WorkerMessage,
} from "../workers/protocol.ts";
import type { App } from "./apps.ts";
import type { Config } from "./config.ts";
import type { InstanceStorage } from "./instance_storage.ts";
import type { Logger } from "./log.ts";
import type { Placement } from "./placement.ts";
import type { ClassRecord, Registry } from "./registry.ts";
import type { UsageMeter } from "./usage.ts";
import { type Answer, type RequestMessage, WorkerGoneError, WorkerHost } from "./worker_host.ts";

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
  lastActive = Date.now();
  #cpuCharged = 0;

  constructor(key: string, target: InstanceTarget, host: WorkerHost) {
    this.key = key;
    this.target = target;
    this.host = host;
  }

  /** CPU µs used since the last call (what the meter has not seen yet). */
  takeCpuMicros(): number {
    const total = this.host.cpuMicros;
    const delta = total - this.#cpuCharged;
    this.#cpuCharged = total;
    return delta;
  }
}

/** Options for {@linkcode InstanceManager}. */
export interface InstanceManagerOptions {
  config: Config;
  registry: Registry;
  storage: InstanceStorage;
  placement: Placement;
  usage: UsageMeter;
  logger: Logger;
}

/** Starts, routes to and stops instance workers. */
export class InstanceManager {
  readonly #options: InstanceManagerOptions;
  readonly #live = new Map<string, Instance>();
  readonly #starting = new Map<string, Promise<Instance>>();
  #stopQueue: Promise<void> = Promise.resolve();
  #sweeper: ReturnType<typeof setInterval>;
  #closed = false;

  constructor(options: InstanceManagerOptions) {
    this.#options = options;
    const everyMs = Math.min(5_000, Math.max(250, options.config.idleTimeoutSec * 250));
    this.#sweeper = setInterval(() => this.#sweepIdle(), everyMs);
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
    const instance = await this.#instance(target);
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

  /** Stops the live instances of one class, or of the whole app when `className` is null. */
  stopInstances(
    appId: string,
    className: string | null,
    reason: "redeploy" | "delete",
  ): Promise<void> {
    const victims = [...this.#live.values()].filter((instance) =>
      instance.target.app.appId === appId &&
      (className === null || instance.target.record.name === className)
    );
    for (const instance of victims) this.#live.delete(instance.key);
    return this.#enqueueStops(victims, reason);
  }

  /** Stops every instance (shutdown): each commits its storage first. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    await Promise.allSettled(this.#starting.values());
    const all = [...this.#live.values()];
    this.#live.clear();
    await this.#enqueueStops(all, "shutdown");
  }

  async #instance(target: InstanceTarget): Promise<Instance> {
    const key = instanceKey(target);
    const live = this.#live.get(key);
    if (live && !live.host.exited) return live;
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
      sockets: [],
      autoResponse: null,
      eventTimeoutMs: null,
    };
    const host = new WorkerHost({ memoryLimitMb: config.memoryLimitMb });
    const instance = new Instance(key, target, host);
    host.init(init, {
      onMessage: (message) => this.#onMessage(instance, message),
      onExit: (error) => {
        if (this.#live.get(key) === instance) this.#live.delete(key);
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
        return;
      case "init-error":
        this.#log(instance, "error", `Class failed to load: ${message.error.message}`);
        this.#live.delete(instance.key);
        instance.host.terminate({ ...message.error, code: "MODULE_LOAD_FAILED" });
        return;
      case "abort":
        this.#live.delete(instance.key);
        instance.host.terminate({
          name: "Error",
          code: "OBJECT_RESET",
          message: message.reason,
          reset: true,
        });
        return;
      default:
        return;
    }
  }

  /** Keeps the number of live instances under `--max-instances` (least recently used first). */
  async #makeRoom(): Promise<void> {
    const excess = this.#live.size + 1 - this.#options.config.maxInstances;
    if (excess <= 0) return;
    const victims = [...this.#live.values()]
      .sort((a, b) => a.lastActive - b.lastActive)
      .slice(0, excess);
    for (const victim of victims) this.#live.delete(victim.key);
    await this.#enqueueStops(victims, "evict");
  }

  #sweepIdle(): void {
    const cutoff = Date.now() - this.#options.config.idleTimeoutSec * 1000;
    const idle = [...this.#live.values()].filter((instance) =>
      instance.host.pending === 0 && instance.lastActive < cutoff
    );
    for (const instance of idle) this.#live.delete(instance.key);
    if (idle.length) this.#enqueueStops(idle, "idle");
  }

  /** Stops instances strictly one after another, across all callers. */
  #enqueueStops(
    instances: Instance[],
    reason: "redeploy" | "delete" | "idle" | "shutdown" | "evict",
  ): Promise<void> {
    const run = this.#stopQueue.then(async () => {
      for (const instance of instances) {
        await instance.host.stop(reason);
        this.#chargeCpu(instance);
      }
    });
    this.#stopQueue = run.catch(() => {});
    return run;
  }

  #chargeCpu(instance: Instance): void {
    const micros = instance.takeCpuMicros();
    if (micros > 0) {
      const { app, record } = instance.target;
      this.#options.usage.addCpu(app.appId, record.name, micros / 1000);
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

/** The map key of an instance. */
export function instanceKey(target: InstanceTarget): string {
  return `${target.app.appId}/${target.record.name}/${target.idHex}`;
}

function unexpected(answer: Answer): WireError {
  return { name: "Error", code: "INTERNAL", message: `Unexpected answer "${answer.type}"` };
}
