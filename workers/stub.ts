/**
 * The caller's side of object-to-object calls: `DurableObjectStub` and the channel its calls
 * travel on.
 *
 * A stub is a handle on another object (or this one). `stub.fetch()` sends an HTTP request;
 * any other property is an RPC method, so `await stub.add(1, 2)` calls `add` on the target.
 * Arguments and results are structured-cloned with `node:v8` (Date, Map, Set, typed arrays,
 * cycles, … survive; functions and `RpcTarget`s throw `DataCloneError`). Calls go to the host
 * as `call` messages and come back as `call-result`, with the caller's call depth so the host
 * can stop loops. Like Cloudflare's output gate, a call leaves only after the caller's earlier
 * writes are committed. Errors thrown by the target come back with their name and message and
 * the flags Cloudflare sets (`remote`, `retryable`, `overloaded`, `durableObjectReset`).
 */

import { currentCallDepth } from "./call_context.ts";
import type { DurableObjectId } from "./object_id.ts";
import {
  requestToWire,
  responseFromWire,
  type WireCall,
  type WireCallResult,
  type WireError,
  type WireTarget,
  type WorkerMessage,
} from "./protocol.ts";
import { decodeValue, encodeValue } from "./value_codec.ts";

/** Sends calls to the host and matches their results. */
export class CallChannel {
  readonly #post: (message: WorkerMessage, transfer: Transferable[]) => void;
  readonly #beforeSend: () => Promise<void>;
  readonly #pending = new Map<number, (result: WireCallResult) => void>();
  #nextId = 1;

  /**
   * @param post posts a message to the host.
   * @param beforeSend resolves once earlier storage writes are committed (the output gate).
   */
  constructor(
    post: (message: WorkerMessage, transfer: Transferable[]) => void,
    beforeSend: () => Promise<void>,
  ) {
    this.#post = post;
    this.#beforeSend = beforeSend;
  }

  /** Sends `call` and resolves with its result. */
  async send(call: WireCall, transfer: Transferable[] = []): Promise<WireCallResult> {
    await this.#beforeSend();
    const callId = this.#nextId++;
    return new Promise<WireCallResult>((resolve) => {
      this.#pending.set(callId, resolve);
      this.#post({ type: "call", callId, call }, transfer);
    });
  }

  /** Delivers the host's answer to call `callId`. */
  settle(callId: number, result: WireCallResult): void {
    const resolve = this.#pending.get(callId);
    this.#pending.delete(callId);
    resolve?.(result);
  }
}

/** Property names a stub answers itself; every other name is an RPC method. */
const OWN = new Set(["id", "name", "fetch"]);

/** A handle on one object of a namespace: `fetch()` plus RPC methods. */
export class DurableObjectStub {
  readonly id: DurableObjectId;
  readonly #target: WireTarget;
  readonly #channel: CallChannel;

  /** Made by `DurableObjectNamespace.get()`; returns the RPC-capable proxy. */
  constructor(id: DurableObjectId, target: WireTarget, channel: CallChannel) {
    this.id = id;
    this.#target = target;
    this.#channel = channel;
    // The stub must answer any method name (RPC), so callers get a proxy over it.
    return new Proxy(this, { get: stubProperty });
  }

  /** The name the id was made from, if any. */
  get name(): string | undefined {
    return this.id.name;
  }

  /** Sends an HTTP request to the object; resolves with its response. */
  async fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const req = await requestToWire(new Request(input, init));
    const result = await this.#channel.send(
      { kind: "fetch", target: this.#target, req, depth: currentCallDepth() + 1 },
      req.body ? [req.body] : [],
    );
    if (!result.ok) throw remoteError(result.error);
    if (!("res" in result)) throw new Error("Durable Object call returned no response");
    return responseFromWire(result.res);
  }

  /** Calls `method` on the object with structured-cloned `args`. */
  async call(method: string, args: unknown[]): Promise<unknown> {
    const result = await this.#channel.send({
      kind: "rpc",
      target: this.#target,
      method,
      args: encodeValue(args),
      depth: currentCallDepth() + 1,
    });
    if (!result.ok) throw remoteError(result.error);
    if (!("value" in result)) throw new Error("Durable Object call returned no value");
    return decodeValue(result.value);
  }
}

/** The proxy's `get`: own members as usual, any other string is an RPC method. */
function stubProperty(stub: DurableObjectStub, property: string | symbol): unknown {
  if (typeof property === "symbol" || OWN.has(property)) {
    const value: unknown = Reflect.get(stub, property, stub);
    return typeof value === "function" ? value.bind(stub) : value;
  }
  // Not a thenable: `await stub` must give the stub, not call a remote `then`.
  if (property === "then") return undefined;
  return (...args: unknown[]) => stub.call(property, args);
}

const ERROR_TYPES: Record<string, new (message: string) => Error> = {
  Error,
  TypeError,
  RangeError,
  ReferenceError,
  SyntaxError,
  EvalError,
  URIError,
};

/** Codes of failures outside the target's code: the caller may retry. */
const INFRASTRUCTURE = new Set([
  "WORKER_GONE",
  "WORKER_CRASHED",
  "SHUTTING_DOWN",
  "INTERNAL",
  "MODULE_LOAD_FAILED",
  "STORAGE_UNAVAILABLE",
]);

/** Rebuilds an error that crossed from another object, with Cloudflare's flags. */
export function remoteError(wire: WireError): Error {
  const Type = ERROR_TYPES[wire.name];
  const error = Type ? new Type(wire.message) : new Error(wire.message);
  if (!Type && wire.name) {
    Object.defineProperty(error, "name", { value: wire.name, writable: true, configurable: true });
  }
  const flags: Record<string, boolean> = {};
  if (wire.code === "USER_EXCEPTION" || wire.code === "CONSTRUCTOR_FAILED") flags.remote = true;
  if (wire.reset) flags.durableObjectReset = true;
  if (wire.overloaded) flags.overloaded = true;
  else if (wire.reset || INFRASTRUCTURE.has(wire.code)) flags.retryable = true;
  return Object.assign(error, flags);
}
