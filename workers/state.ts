/** `DurableObjectState` (`ctx`): what one object sees of its runtime. */

import type { DurableObjectId } from "./object_id.ts";
import type { DurableObjectStorage } from "./storage.ts";
import type { WebSocketHub } from "./websocket_hub.ts";
import type { WebSocketRequestResponsePair, WorkerWebSocket } from "./websocket.ts";

/** What the state delegates to the object runtime. */
export interface StateControl {
  waitUntil(promise: Promise<unknown>): void;
  blockConcurrencyWhile<T>(callback: () => T | Promise<T>): Promise<T>;
  abort(reason: string, retryAlarm: boolean): never;
}

/** The `ctx` passed to a Durable Object's constructor. */
export class DurableObjectState {
  readonly id: DurableObjectId;
  readonly storage: DurableObjectStorage;
  readonly #control: StateControl;
  readonly #sockets: WebSocketHub;

  constructor(
    id: DurableObjectId,
    storage: DurableObjectStorage,
    parts: { control: StateControl; sockets: WebSocketHub },
  ) {
    this.id = id;
    this.storage = storage;
    this.#control = parts.control;
    this.#sockets = parts.sockets;
  }

  /** Keeps the object alive until `promise` settles; does not delay the response. */
  waitUntil(promise: Promise<unknown>): void {
    this.#control.waitUntil(promise);
  }

  /** Holds back other events until `callback` settles; a failure resets the object. */
  blockConcurrencyWhile<T>(callback: () => T | Promise<T>): Promise<T> {
    return this.#control.blockConcurrencyWhile(callback);
  }

  /** Accepts `ws` for the Hibernation API: its events go to the object's handler methods. */
  acceptWebSocket(ws: WorkerWebSocket, tags?: string[]): void {
    this.#sockets.acceptWebSocket(ws, tags);
  }

  /** The connected hibernatable sockets, all or those tagged `tag`. */
  getWebSockets(tag?: string): WorkerWebSocket[] {
    return this.#sockets.getWebSockets(tag);
  }

  /** The tags `ws` was accepted with. */
  getTags(ws: WorkerWebSocket): string[] {
    return this.#sockets.getTags(ws);
  }

  /** Sets (or, without an argument, clears) the reply the host sends without waking us. */
  setWebSocketAutoResponse(...pair: [WebSocketRequestResponsePair?]): void {
    this.#sockets.setWebSocketAutoResponse(...pair);
  }

  /** The auto-response pair, or null. */
  getWebSocketAutoResponse(): WebSocketRequestResponsePair | null {
    return this.#sockets.getWebSocketAutoResponse();
  }

  /** When the host last auto-responded on `ws`, or null. */
  getWebSocketAutoResponseTimestamp(ws: WorkerWebSocket): Date | null {
    return this.#sockets.getWebSocketAutoResponseTimestamp(ws);
  }

  /** Caps how long a hibernatable socket event may run (stored; see the README). */
  setHibernatableWebSocketEventTimeout(timeoutMs?: number): void {
    this.#sockets.setHibernatableWebSocketEventTimeout(timeoutMs);
  }

  /** The event timeout in ms, or null when there is none. */
  getHibernatableWebSocketEventTimeout(): number | null {
    return this.#sockets.getHibernatableWebSocketEventTimeout();
  }

  /** Resets the object at once: uncommitted writes are discarded and the request fails. */
  abort(reason?: unknown, options?: { retryAlarm?: boolean }): never {
    const message = reason === undefined ? "Durable Object was aborted" : String(reason);
    return this.#control.abort(message, options?.retryAlarm ?? true);
  }
}
