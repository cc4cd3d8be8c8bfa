/**
 * One Durable Object instance inside its worker: construction, event delivery, output gate.
 *
 * Events (HTTP requests, alarms, RPC calls, socket messages) pass the {@linkcode EventGate}
 * and then reach the user's handler. The constructor runs lazily before the first event; if it
 * throws, that event fails and the next one tries again. Before any answer leaves the worker,
 * the implicit storage transaction is committed (the output gate), so a client never sees a
 * response whose writes could still be lost. A reset (`ctx.abort()`, a failed
 * `blockConcurrencyWhile`) discards uncommitted writes, tells the host, and freezes the thread
 * until the host terminates it: nothing of the old instance runs after a reset.
 */

import { AlarmRunner } from "./alarm_runner.ts";
import { EventGate, ObjectResetError } from "./event_gate.ts";
import { InstanceDb } from "./instance_db.ts";
import { DurableObjectId } from "./object_id.ts";
import {
  type InstanceInit,
  responseToWire,
  type StorageFaultCode,
  type WireError,
  type WorkerMessage,
} from "./protocol.ts";
import { DurableObjectState } from "./state.ts";
import { DurableObjectStorage } from "./storage.ts";
import { StorageFaultError } from "./storage_fault.ts";
import { SqlStorage } from "./sql.ts";
import { WebSocketHub } from "./websocket_hub.ts";

/** How the runtime talks to the host. */
export interface HostPort {
  post(message: WorkerMessage, transfer?: Transferable[]): void;
  /** Cumulative CPU time of this thread in µs. */
  cpu(): number;
}

/** A user Durable Object class: constructed with `(ctx, env)`. */
export type ObjectClass = new (ctx: DurableObjectState, env: Record<string, unknown>) => object;

/** The live instance and its event delivery. */
export class ObjectRuntime {
  readonly #class: ObjectClass;
  readonly #port: HostPort;
  readonly #env: Record<string, unknown>;
  readonly #gate: EventGate;
  readonly #db: InstanceDb;
  readonly #state: DurableObjectState;
  readonly sockets: WebSocketHub;
  readonly alarms: AlarmRunner;
  #instance: object | null = null;
  #pendingWaitUntil = 0;

  constructor(
    init: InstanceInit,
    parts: { objectClass: ObjectClass; port: HostPort; env: Record<string, unknown> },
  ) {
    this.#class = parts.objectClass;
    this.#port = parts.port;
    this.#env = parts.env;
    this.#gate = new EventGate({
      onReset: (error) => this.reset(error.message, true, { keepWrites: true, error }),
      timeoutMs: init.blockTimeoutMs,
    });
    this.#db = new InstanceDb(init.dbPath, {
      onFatal: (error) =>
        this.reset(`Storage failure: ${errorMessage(error)}`, true, {
          code: error instanceof StorageFaultError ? error.code : undefined,
        }),
      maxStorageBytes: init.maxStorageBytes,
      eventsWaiting: () => this.#gate.waiting,
    });
    this.sockets = new WebSocketHub(init, {
      post: (message, transfer) => this.#port.post(message, transfer),
      commit: () => this.#db.commitSafely(),
      deliver: (event) => this.deliver(event),
      busy: () => this.busy,
    });
    const storage = new DurableObjectStorage(this.#db, {
      maxKeyBytes: init.maxKeyBytes,
      maxValueBytes: init.maxValueBytes,
      sql: new SqlStorage(this.#db),
      hooks: {
        onAlarmChanged: (at) => this.#port.post({ type: "alarm-set", at }),
        // Checked after the constructor, like workerd: the constructor itself may set one.
        hasAlarmHandler: () =>
          this.#instance === null ||
          typeof Reflect.get(this.#class.prototype, "alarm") === "function",
        blockConcurrencyWhile: (fn) => this.#gate.hold(fn),
      },
    });
    this.#state = new DurableObjectState(new DurableObjectId(init.idHex, init.name), storage, {
      control: {
        waitUntil: (promise) => this.#waitUntil(promise),
        blockConcurrencyWhile: (callback) => this.#gate.blockWhile(callback),
        abort: (reason, retryAlarm) => this.reset(reason, retryAlarm),
      },
      sockets: this.sockets,
    });
    this.alarms = new AlarmRunner({
      deliver: (event) => this.deliver(event),
      storage,
      toWireError,
    });
  }

  /** The object's `ctx`. */
  get state(): DurableObjectState {
    return this.#state;
  }

  /** Whether anything still runs that an idle stop would cut short. */
  get busy(): boolean {
    return this.#pendingWaitUntil > 0 || this.#db.dirty;
  }

  /** The user's instance, constructed on first use. Throws when the constructor throws. */
  instance(): Record<string, unknown> {
    if (this.#instance === null) {
      try {
        this.#instance = new this.#class(this.#state, this.#env);
      } catch (error) {
        throw new EventError("CONSTRUCTOR_FAILED", error);
      }
    }
    return this.#instance as Record<string, unknown>;
  }

  /** Delivers one event through the gate; the instance is constructed first. */
  deliver<T>(event: (instance: Record<string, unknown>) => Promise<T>): Promise<T> {
    let instance: Record<string, unknown>;
    try {
      instance = this.instance();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#gate.run(() => event(instance));
  }

  /** Handles an HTTP request from the host. */
  async fetch(reqId: number, request: Request): Promise<void> {
    try {
      const response = await this.deliver(async (instance) => {
        const handler = instance.fetch;
        if (typeof handler !== "function") {
          throw new Error("Handler does not export a fetch() function.");
        }
        const result: unknown = await handler.call(instance, request);
        if (!(result instanceof Response)) {
          throw new TypeError("Durable Object fetch() must return a Response");
        }
        return result;
      });
      const webSocket = this.sockets.takeResponseSocket(response);
      const res = await responseToWire(response);
      if (webSocket) res.webSocket = webSocket;
      await this.#db.flush();
      this.#port.post(
        { type: "response", reqId, res, cpu: this.#port.cpu() },
        res.body ? [res.body] : [],
      );
    } catch (error) {
      this.fail(reqId, error);
    }
  }

  /** Answers request `reqId` with an error (after committing what the turn wrote). */
  fail(reqId: number, error: unknown): void {
    const wire = toWireError(error);
    // Logged as the object's output, like Cloudflare's uncaught exceptions; a reset already was.
    if (wire.code !== "OBJECT_RESET") {
      // deno-lint-ignore no-console -- forwarded to the host's log as this instance's output
      console.error(`Uncaught ${wire.name}: ${wire.message}`);
    }
    this.#db.flush().finally(() =>
      this.#port.post({ type: "error", reqId, error: wire, cpu: this.#port.cpu() })
    );
  }

  /**
   * Resets the object: drops uncommitted writes, tells the host, freezes until terminated.
   * `code` names the storage fault behind a storage failure (the host answers with it).
   */
  reset(
    reason: string,
    retryAlarm: boolean,
    options: { keepWrites?: boolean; error?: ObjectResetError; code?: StorageFaultCode } = {},
  ): never {
    // A failed blockConcurrencyWhile keeps what was written (the next construction sees it);
    // ctx.abort() and storage failures throw the uncommitted writes away.
    if (options.keepWrites) {
      this.#db.close();
    } else if (retryAlarm) {
      this.#db.discard();
    } else {
      this.#db.rollback();
      this.alarms.abandon();
      this.#db.close();
    }
    const overloaded = options.error?.overloaded === true;
    this.#port.post({ type: "abort", reason, retryAlarm, overloaded, code: options.code });
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    throw new ObjectResetError(reason);
  }

  /** Commits and closes storage; the host terminates the worker afterwards. */
  stop(): void {
    this.sockets.stop();
    this.#db.close();
    this.#port.post({ type: "stopped" });
  }

  #waitUntil(promise: Promise<unknown>): void {
    this.#pendingWaitUntil++;
    Promise.resolve(promise).catch((error) => {
      // deno-lint-ignore no-console -- forwarded to the host's log as this instance's output
      console.error(`Uncaught (in waitUntil) ${errorMessage(error)}`);
    }).finally(() => this.#pendingWaitUntil--);
  }
}

/** An event failure with a machine code (constructor failures, limits). */
export class EventError extends Error {
  readonly code: string;
  constructor(code: string, cause: unknown) {
    super(errorMessage(cause), { cause });
    this.code = code;
    this.name = cause instanceof Error ? cause.name : "Error";
  }
}

/** The wire form of an error thrown by user code or the runtime. */
export function toWireError(error: unknown): WireError {
  if (error instanceof EventError || error instanceof StorageFaultError) {
    return { name: error.name, message: error.message, code: error.code };
  }
  if (error instanceof ObjectResetError) {
    return {
      name: "Error",
      message: error.message,
      code: "OBJECT_RESET",
      reset: true,
      overloaded: error.overloaded,
    };
  }
  if (error instanceof Error) {
    return { name: error.name, message: error.message, code: "USER_EXCEPTION" };
  }
  return { name: "Error", message: String(error), code: "USER_EXCEPTION" };
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
