/**
 * The object's side of its WebSockets: the Hibernation API behind `ctx`, event delivery, and
 * the batch of socket operations sent to the host.
 *
 * The client sockets live on the host, together with everything that must outlive this
 * worker (tags, attachments, the auto-response pair and timestamps, the event timeout): a
 * fresh worker receives them in `InstanceInit` and rebuilds its sockets before the constructor
 * runs. Socket events go through the object's input gate like any other event, one start per
 * turn and in arrival order, so one socket's messages are dispatched in order. The worker
 * acknowledges each dispatched message, which is what the host's per-socket flow control
 * waits for. Operations of one turn (`send`, `close`, attachment changes, acks) leave in one
 * `ws-out` message after the turn's writes are committed: the output gate.
 */

import { setImmediate } from "node:timers";
import { pendingTimers } from "./pending_timers.ts";
import type {
  HostMessage,
  InstanceInit,
  WireAutoResponse,
  WireSocketAccept,
  WireSocketOp,
  WorkerMessage,
} from "./protocol.ts";
import {
  attachSocket,
  dispatchClose,
  dispatchError,
  dispatchMessage,
  responseSocket,
  socketInternals,
  type SocketSink,
  WebSocketRequestResponsePair,
  WorkerWebSocket,
} from "./websocket.ts";

const MAX_TAGS = 10;
const MAX_TAG_BYTES = 256;
const MAX_SOCKETS = 32_768;
const MAX_AUTO_RESPONSE_BYTES = 2048;
const MAX_EVENT_TIMEOUT_MS = 604_800_000;

/** The socket messages of the host protocol. */
export type SocketHostMessage = Extract<
  HostMessage,
  {
    type:
      | "ws-attached"
      | "ws-message"
      | "ws-close"
      | "ws-error"
      | "ws-auto-responded"
      | "ws-probe";
  }
>;

/** What the hub needs from the object runtime. */
export interface HubDeps {
  post(message: WorkerMessage, transfer?: Transferable[]): void;
  /** Commits the turn's writes (the output gate); throws if the commit fails. */
  commit(): void;
  /** Delivers one event through the input gate, constructing the object first. */
  deliver(event: (instance: Record<string, unknown>) => Promise<void>): Promise<void>;
  /** Whether waitUntil promises or uncommitted writes are pending. */
  busy(): boolean;
}

/** The sockets of one object. */
export class WebSocketHub implements SocketSink {
  readonly #deps: HubDeps;
  /** Sockets whose client the host knows, by id. */
  readonly #byId = new Map<number, WorkerWebSocket>();
  /** Hibernatable sockets in accept order, until their close has been handled. */
  #accepted: WorkerWebSocket[] = [];
  #nextId: number;
  #autoResponse: WireAutoResponse | null;
  #eventTimeoutMs: number | null;
  #ops: WireSocketOp[] = [];
  #transfer: ArrayBuffer[] = [];
  #scheduled = false;
  /** Socket events dispatched whose handler has not finished. */
  #running = 0;
  /** The worker is stopping: host socket messages are ignored. */
  #stopped = false;

  constructor(
    init: Pick<InstanceInit, "sockets" | "autoResponse" | "eventTimeoutMs" | "nextSockId">,
    deps: HubDeps,
  ) {
    this.#deps = deps;
    this.#nextId = init.nextSockId;
    this.#autoResponse = init.autoResponse;
    this.#eventTimeoutMs = init.eventTimeoutMs;
    for (const wire of [...init.sockets].sort((a, b) => a.sockId - b.sockId)) {
      const ws = new WorkerWebSocket();
      const state = socketInternals(ws);
      state.mode = "hibernatable";
      state.sockId = wire.sockId;
      state.tags = [...wire.tags];
      state.attachment = wire.attachment;
      state.autoResponseAt = wire.autoResponseAt;
      state.readyState = wire.readyState;
      attachSocket(ws, this);
      this.#byId.set(wire.sockId, ws);
      this.#accepted.push(ws);
      this.#nextId = Math.max(this.#nextId, wire.sockId + 1);
    }
  }

  // ---- ctx: the Hibernation API ----

  /** `ctx.acceptWebSocket(ws, tags)`. */
  acceptWebSocket(ws: unknown, tags: unknown = []): void {
    if (!(ws instanceof WorkerWebSocket)) {
      throw new TypeError(
        "Failed to execute 'acceptWebSocket' on 'DurableObjectState': parameter 1 is not of " +
          "type 'WebSocket'.",
      );
    }
    if (!Array.isArray(tags)) {
      throw new TypeError(
        "Failed to execute 'acceptWebSocket' on 'DurableObjectState': parameter 2 is not of " +
          "type 'Array'.",
      );
    }
    const state = socketInternals(ws);
    if (state.mode !== "none") {
      throw new Error(
        "Cannot call `acceptWebSocket()` if the WebSocket was already accepted via `accept()`",
      );
    }
    if (state.usedInResponse) {
      throw new Error(
        "Cannot call `acceptWebSocket()` on this WebSocket because its pair has already been " +
          "accepted or used in a Response.",
      );
    }
    const unique = [...new Set(tags.map(String))];
    for (const tag of unique) {
      if (new TextEncoder().encode(tag).length > MAX_TAG_BYTES) {
        throw new Error(`"${tag}" is longer than the max tag length (256 characters).`);
      }
    }
    if (unique.length > MAX_TAGS) {
      throw new Error("a Hibernatable WebSocket cannot have more than 10 tags");
    }
    if (this.#accepted.length >= MAX_SOCKETS) {
      throw new Error(
        "only 32768 websockets can be accepted on a single Durable Object instance",
      );
    }
    state.mode = "hibernatable";
    state.tags = unique;
    state.hub = this;
    this.#accepted.push(ws);
  }

  /** `ctx.getWebSockets(tag?)`: newest first without a tag, accept order with one. */
  getWebSockets(tag?: unknown): WorkerWebSocket[] {
    if (tag === undefined) return [...this.#accepted].reverse();
    if (typeof tag !== "string") return [];
    return this.#accepted.filter((ws) => socketInternals(ws).tags.includes(tag));
  }

  /** `ctx.getTags(ws)`: a copy of the socket's tags. */
  getTags(ws: unknown): string[] {
    const state = socketOf(ws, "getTags");
    if (state.mode === "accepted") throw new Error("only hibernatable websockets can have tags.");
    if (state.mode === "none") {
      throw new Error(
        "you must call 'acceptWebSocket()' before attempting to access the tags of a WebSocket.",
      );
    }
    return [...state.tags];
  }

  /** `ctx.setWebSocketAutoResponse(pair?)`: no argument clears it. */
  setWebSocketAutoResponse(...args: unknown[]): void {
    const pair = args[0];
    if (pair === undefined) {
      this.#autoResponse = null;
    } else {
      if (!(pair instanceof WebSocketRequestResponsePair)) {
        throw new TypeError(
          "Failed to execute 'setWebSocketAutoResponse' on 'DurableObjectState': parameter 1 " +
            "is not of type 'WebSocketRequestResponsePair'.",
        );
      }
      checkAutoResponseSize("Request", pair.request);
      checkAutoResponseSize("Response", pair.response);
      this.#autoResponse = { request: pair.request, response: pair.response };
    }
    this.push({ op: "auto-response", pair: this.#autoResponse });
  }

  /** `ctx.getWebSocketAutoResponse()`: a new pair object, or null. */
  getWebSocketAutoResponse(): WebSocketRequestResponsePair | null {
    const pair = this.#autoResponse;
    return pair ? new WebSocketRequestResponsePair(pair.request, pair.response) : null;
  }

  /** `ctx.getWebSocketAutoResponseTimestamp(ws)`: when the host last auto-responded on it. */
  getWebSocketAutoResponseTimestamp(ws: unknown): Date | null {
    const state = socketOf(ws, "getWebSocketAutoResponseTimestamp");
    return state.mode === "hibernatable" && state.autoResponseAt !== null
      ? new Date(state.autoResponseAt)
      : null;
  }

  /** `ctx.setHibernatableWebSocketEventTimeout(ms?)`: nothing or 0 removes the cap. */
  setHibernatableWebSocketEventTimeout(ms?: unknown): void {
    let value: number | null = null;
    if (ms !== undefined && ms !== null) {
      const number = Number(ms);
      if (Number.isNaN(number)) {
        throw new TypeError("The value cannot be converted because it is not an integer.");
      }
      if (number < 0) {
        throw new TypeError(
          "The value cannot be converted because it is negative and this API expects a " +
            "positive number.",
        );
      }
      if (number > 4_294_967_295) {
        throw new TypeError("Value out of range. Must be less than or equal to 4294967295.");
      }
      const whole = Math.trunc(number);
      if (whole > MAX_EVENT_TIMEOUT_MS) {
        throw new Error(`Event timeout should not exceed ${MAX_EVENT_TIMEOUT_MS} ms.`);
      }
      value = whole === 0 ? null : whole;
    }
    this.#eventTimeoutMs = value;
    this.push({ op: "event-timeout", ms: value });
  }

  /** `ctx.getHibernatableWebSocketEventTimeout()`. */
  getHibernatableWebSocketEventTimeout(): number | null {
    return this.#eventTimeoutMs;
  }

  // ---- the runtime side ----

  /** The socket a 101 response hands to the client, if the response carries one. */
  takeResponseSocket(response: Response): WireSocketAccept | undefined {
    const client = responseSocket(response);
    if (!client) return undefined;
    const server = socketInternals(client).peer;
    if (!server) return undefined;
    const state = socketInternals(server);
    state.sockId ??= this.#nextId++;
    state.hub = this;
    this.#byId.set(state.sockId, server);
    return {
      sockId: state.sockId,
      hibernatable: state.mode === "hibernatable",
      tags: [...state.tags],
    };
  }

  /** Handles a socket message from the host. */
  receive(message: SocketHostMessage): void {
    if (this.#stopped) return;
    switch (message.type) {
      case "ws-attached": {
        const ws = this.#byId.get(message.sockId);
        if (ws) attachSocket(ws, this);
        return;
      }
      case "ws-message":
        this.#message(message.sockId, message.data);
        return;
      case "ws-close":
        this.#close(message.sockId, message);
        return;
      case "ws-error":
        this.#error(message.sockId, message.message);
        return;
      case "ws-auto-responded": {
        const ws = this.#byId.get(message.sockId);
        if (ws) socketInternals(ws).autoResponseAt = message.at;
        return;
      }
      case "ws-probe":
        this.#deps.post({ type: "ws-idle", seq: message.seq, idle: this.idle });
        return;
      default: {
        const unknown: never = message;
        throw new Error(`Unknown socket message ${JSON.stringify(unknown)}`);
      }
    }
  }

  /**
   * Whether the object may hibernate: no socket event running, no operation unsent, no
   * `accept()`-ed socket open, no timer pending, no waitUntil or uncommitted write.
   */
  get idle(): boolean {
    if (this.#running > 0 || this.#ops.length > 0 || pendingTimers() > 0 || this.#deps.busy()) {
      return false;
    }
    for (const ws of this.#byId.values()) {
      // A socket whose client never connected (a 101 answer to a plain request) gets no events.
      const state = socketInternals(ws);
      if (state.mode !== "hibernatable" && state.attached) return false;
    }
    return true;
  }

  /** Queues an operation for the host; the batch leaves at the end of the turn. */
  push(op: WireSocketOp, transfer?: ArrayBuffer): void {
    if (op.op === "auto-response" || op.op === "event-timeout") {
      // Settings reach the host at once, before any response of this turn: a client message
      // arriving right after must already see them. Nothing reaches a client, so no output gate.
      this.#deps.post({ type: "ws-out", ops: [op] });
      return;
    }
    const last = this.#ops.at(-1);
    if (
      op.op === "send" && last?.op === "send" && typeof op.data === "string" &&
      last.data === op.data
    ) {
      last.sockIds.push(...op.sockIds);
    } else if (op.op === "ack" && last?.op === "ack" && last.sockId === op.sockId) {
      last.count += op.count;
    } else {
      this.#ops.push(op);
      if (transfer) this.#transfer.push(transfer);
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        this.drain();
      });
    }
  }

  /** Sends the queued operations now, after committing the writes that precede them. */
  drain(): void {
    if (this.#ops.length === 0) return;
    this.#deps.commit();
    const ops = this.#ops;
    const transfer = this.#transfer;
    this.#ops = [];
    this.#transfer = [];
    this.#deps.post({ type: "ws-out", ops }, transfer);
  }

  /** The worker is stopping: sends what is queued and ignores later socket events. */
  stop(): void {
    this.drain();
    this.#stopped = true;
  }

  /** A hibernatable socket that never reached a client was closed. */
  forget(ws: WorkerWebSocket): void {
    this.#accepted = this.#accepted.filter((item) => item !== ws);
  }

  #message(sockId: number, data: string | ArrayBuffer): void {
    let acked = false;
    // Once the worker stops, a message it has not dispatched stays unacknowledged: the host
    // hands it to the next worker instead.
    const ack = () => {
      if (acked || this.#stopped) return;
      acked = true;
      this.push({ op: "ack", sockId, count: 1 });
    };
    const ws = this.#byId.get(sockId);
    if (!ws) {
      ack();
      return;
    }
    const state = socketInternals(ws);
    this.#run((instance) => {
      if (this.#stopped) return undefined;
      ack();
      if (state.mode === "accepted") {
        dispatchMessage(ws, data);
        return undefined;
      }
      if (state.mode !== "hibernatable") return undefined;
      const handler = instance.webSocketMessage;
      return typeof handler === "function" ? handler.call(instance, ws, data) : undefined;
    }, ack);
  }

  #close(sockId: number, close: { code: number; reason: string; wasClean: boolean }): void {
    const ws = this.#byId.get(sockId);
    if (!ws) return;
    this.#byId.delete(sockId);
    const state = socketInternals(ws);
    state.closeReceived = true;
    if (state.mode !== "hibernatable") {
      state.closeSent = true;
      state.readyState = WorkerWebSocket.CLOSED;
      if (state.mode === "accepted") {
        this.#run(() => {
          dispatchClose(ws, close);
          return undefined;
        });
      }
      return;
    }
    state.readyState = state.closeSent ? WorkerWebSocket.CLOSED : WorkerWebSocket.CLOSING;
    this.#run((instance) => {
      const handler = instance.webSocketClose;
      return typeof handler === "function"
        ? handler.call(instance, ws, close.code, close.reason, close.wasClean)
        : undefined;
    }, () => this.forget(ws));
  }

  #error(sockId: number, message: string): void {
    const ws = this.#byId.get(sockId);
    if (!ws) return;
    this.#byId.delete(sockId);
    const state = socketInternals(ws);
    state.closeReceived = true;
    state.closeSent = true;
    state.readyState = WorkerWebSocket.CLOSED;
    this.#run((instance) => {
      if (state.mode === "accepted") {
        dispatchError(ws, message);
        return undefined;
      }
      const handler = instance.webSocketError;
      if (state.mode !== "hibernatable" || typeof handler !== "function") return undefined;
      return handler.call(instance, ws, new Error(message));
    }, () => this.forget(ws));
  }

  /** Runs one socket event through the gate; its failure is logged, never thrown. */
  #run(
    event: (instance: Record<string, unknown>) => unknown,
    done: () => void = () => {},
  ): void {
    this.#running++;
    this.#deps.deliver(async (instance) => {
      await event(instance);
    }).catch((error) => {
      // deno-lint-ignore no-console -- forwarded to the host's log as this instance's output
      console.error(`Uncaught ${describe(error)}`);
    }).finally(() => {
      this.#running--;
      done();
    });
  }
}

function socketOf(ws: unknown, method: string): ReturnType<typeof socketInternals> {
  if (!(ws instanceof WorkerWebSocket)) {
    throw new TypeError(
      `Failed to execute '${method}' on 'DurableObjectState': parameter 1 is not of type ` +
        "'WebSocket'.",
    );
  }
  return socketInternals(ws);
}

function checkAutoResponseSize(kind: "Request" | "Response", text: string): void {
  const size = new TextEncoder().encode(text).length;
  if (size > MAX_AUTO_RESPONSE_BYTES) {
    throw new RangeError(
      `${kind} cannot be larger than ${MAX_AUTO_RESPONSE_BYTES} bytes. A ${kind.toLowerCase()} ` +
        `of size ${size} was provided.`,
    );
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
