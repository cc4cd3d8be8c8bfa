/**
 * The object's end of a WebSocket: `new WebSocketPair()`, `accept()`, `send`, `close`,
 * attachments, and the `Response` that hands the other end to the client.
 *
 * The real client connection lives on the host, so a socket here is a stand-in: `send` and
 * `close` become operations the hub batches to the host, and the host's events come back
 * through the hub. Until the host reports the client connected (`ws-attached`), operations
 * wait in the socket, so an object may send before it returns its 101 response.
 *
 * Compat baseline 2026-04-07: a close from the client of an `accept()`-ed socket is answered
 * at once with the same code (the host's WebSocket does this for every socket), the socket is
 * CLOSED before its `close` event, and binary messages arrive as `Blob` unless `binaryType`
 * is `"arraybuffer"`.
 */

import { deserialize, serialize } from "node:v8";
import type { WireSocketOp } from "./protocol.ts";

/** Largest serialized attachment (workerd's limit). */
export const MAX_ATTACHMENT_BYTES = 16_384;
const MAX_REASON_BYTES = 123;
const ACCEPT_FIRST = "You must call one of accept() or state.acceptWebSocket() on this WebSocket " +
  "before sending messages.";

/** Where an attached socket's operations go: the hub, which batches them to the host. */
export interface SocketSink {
  push(op: WireSocketOp, transfer?: ArrayBuffer): void;
  /** A hibernatable socket that never reached a client was closed: forget it. */
  forget(ws: WorkerWebSocket): void;
}

type PendingOp = { kind: "send"; data: string | ArrayBuffer } | {
  kind: "close";
  code: number | null;
  reason: string;
};

/** What the runtime knows about a socket; user code cannot reach it. */
export interface SocketInternals {
  peer: WorkerWebSocket | null;
  mode: "none" | "accepted" | "hibernatable";
  /** This end was passed as `webSocket` of a `Response`. */
  usedInResponse: boolean;
  /** Assigned when the socket's client is known to the host (its peer was returned). */
  sockId: number | null;
  /** The hub of a hibernatable or host-connected socket. */
  hub: SocketSink | null;
  /** Set once the client is connected: operations go straight to the hub. */
  attached: boolean;
  pending: PendingOp[];
  tags: string[];
  /** The V8-serialized attachment, or null when none was set. */
  attachment: Uint8Array | null;
  autoResponseAt: number | null;
  readyState: number;
  closeSent: boolean;
  closeReceived: boolean;
}

const internals = new WeakMap<WorkerWebSocket, SocketInternals>();
const responseSockets = new WeakMap<Response, WorkerWebSocket>();

/** The runtime state of `ws`. */
export function socketInternals(ws: WorkerWebSocket): SocketInternals {
  const state = internals.get(ws);
  if (!state) throw new TypeError("Not a Durable Object WebSocket");
  return state;
}

/** The socket a `Response` hands to the client, if it was built with `webSocket`. */
export function responseSocket(response: Response): WorkerWebSocket | undefined {
  return responseSockets.get(response);
}

/** One end of a `WebSocketPair`, as the object sees it. */
export class WorkerWebSocket extends EventTarget {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  static readonly READY_STATE_CONNECTING = 0;
  static readonly READY_STATE_OPEN = 1;
  static readonly READY_STATE_CLOSING = 2;
  static readonly READY_STATE_CLOSED = 3;
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readonly CLOSING = 2;
  readonly CLOSED = 3;
  readonly READY_STATE_CONNECTING = 0;
  readonly READY_STATE_OPEN = 1;
  readonly READY_STATE_CLOSING = 2;
  readonly READY_STATE_CLOSED = 3;
  /** `"blob"` (the default under the compat baseline) or `"arraybuffer"`. */
  binaryType: "blob" | "arraybuffer" = "blob";
  onmessage: ((event: MessageEvent) => unknown) | null = null;
  onclose: ((event: CloseEvent) => unknown) | null = null;
  onerror: ((event: Event) => unknown) | null = null;
  onopen: ((event: Event) => unknown) | null = null;

  constructor() {
    super();
    internals.set(this, {
      peer: null,
      mode: "none",
      usedInResponse: false,
      sockId: null,
      hub: null,
      attached: false,
      pending: [],
      tags: [],
      attachment: null,
      autoResponseAt: null,
      readyState: WorkerWebSocket.OPEN,
      closeSent: false,
      closeReceived: false,
    });
  }

  get readyState(): number {
    return socketInternals(this).readyState;
  }

  get url(): string | null {
    return null;
  }

  get protocol(): string | null {
    return null;
  }

  get extensions(): string | null {
    return null;
  }

  /** Starts the standard API on this end: events go to its listeners. */
  accept(_options?: { allowHalfOpen?: boolean }): void {
    const state = socketInternals(this);
    if (state.mode === "hibernatable") {
      throw new TypeError("Can't accept() WebSocket after enabling hibernation.");
    }
    if (state.usedInResponse) {
      throw new TypeError("Can't accept() WebSocket that was already used in a response.");
    }
    state.mode = "accepted";
  }

  /** Sends a text or binary message (after the turn's writes are committed). */
  send(message: string | ArrayBuffer | ArrayBufferView): void {
    const state = socketInternals(this);
    if (state.mode === "none") throw new TypeError(ACCEPT_FIRST);
    if (state.closeSent) throw new TypeError("Can't call WebSocket send() after close().");
    if (state.closeReceived) return;
    emit(state, { kind: "send", data: wireData(message) });
  }

  /** Starts the closing handshake; a second call does nothing. */
  close(code?: number, reason?: string): void {
    const state = socketInternals(this);
    if (state.mode === "none") throw new TypeError(ACCEPT_FIRST);
    if (state.closeSent) return;
    const closeCode = code === undefined ? null : Number(code);
    if (closeCode !== null && !validCloseCode(closeCode)) {
      throw new DOMException(`Invalid WebSocket close code: ${code}.`, "InvalidAccessError");
    }
    if (reason !== undefined && closeCode === null) {
      throw new TypeError("If you specify a WebSocket close reason, you must also specify a code.");
    }
    const text = reason === undefined ? "" : String(reason);
    if (new TextEncoder().encode(text).length > MAX_REASON_BYTES) {
      throw new DOMException(
        "WebSocket close reason must not be longer than 123 bytes when UTF-8 encoded.",
        "SyntaxError",
      );
    }
    state.closeSent = true;
    state.readyState = state.closeReceived ? WorkerWebSocket.CLOSED : WorkerWebSocket.CLOSING;
    if (state.closeReceived) return;
    if (state.sockId === null && state.mode === "hibernatable") {
      state.hub?.forget(this);
      return;
    }
    emit(state, { kind: "close", code: closeCode, reason: text });
  }

  /** Keeps a structured clone of `value` with the socket (it survives hibernation). */
  serializeAttachment(...args: unknown[]): void {
    if (args.length === 0) {
      throw new TypeError(
        "Failed to execute 'serializeAttachment' on 'WebSocket': parameter 1 is not of type " +
          "'Value'.",
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = serialize(args[0]);
    } catch (error) {
      throw new DOMException(
        error instanceof Error ? error.message : String(error),
        "DataCloneError",
      );
    }
    if (bytes.length > MAX_ATTACHMENT_BYTES) {
      throw new Error(
        `A WebSocket 'attachment' cannot be larger than ${MAX_ATTACHMENT_BYTES} bytes.`,
      );
    }
    const state = socketInternals(this);
    state.attachment = bytes;
    if (state.attached && state.sockId !== null) {
      state.hub?.push({ op: "attachment", sockId: state.sockId, attachment: bytes });
    }
  }

  /** A fresh copy of the attachment, or null when none was set. */
  deserializeAttachment(): unknown {
    const bytes = socketInternals(this).attachment;
    return bytes === null ? null : deserialize(bytes);
  }
}

/** `new WebSocketPair()`: `[client, server] = Object.values(pair)`. */
export class WebSocketPair {
  readonly 0: WorkerWebSocket;
  readonly 1: WorkerWebSocket;

  constructor() {
    const client = new WorkerWebSocket();
    const server = new WorkerWebSocket();
    socketInternals(client).peer = server;
    socketInternals(server).peer = client;
    this[0] = client;
    this[1] = server;
  }
}

/** The pair given to `ctx.setWebSocketAutoResponse`. */
export class WebSocketRequestResponsePair {
  readonly #request: string;
  readonly #response: string;

  constructor(request: string, response: string) {
    this.#request = String(request);
    this.#response = String(response);
  }

  get request(): string {
    return this.#request;
  }

  get response(): string {
    return this.#response;
  }
}

/**
 * Defines `WebSocketPair` and `WebSocketRequestResponsePair`, and wraps `Response` so that
 * `new Response(null, { status: 101, webSocket })` records the socket for the runtime.
 * `instanceof WebSocket` also holds for the object's sockets.
 */
export function installWebSocketGlobals(scope: typeof globalThis): void {
  const NativeResponse = scope.Response;
  const construct = (target: typeof Response, args: unknown[], newTarget: object): object => {
    const response: Response = Reflect.construct(
      target as unknown as new (...values: unknown[]) => Response,
      args,
      newTarget as new (...values: unknown[]) => Response,
    );
    const init = args[1];
    const webSocket = init !== null && typeof init === "object"
      ? Reflect.get(init, "webSocket")
      : undefined;
    if (webSocket === undefined || webSocket === null) return response;
    if (!(webSocket instanceof WorkerWebSocket)) {
      throw new TypeError("Failed to construct 'Response': webSocket is not a WebSocket.");
    }
    socketInternals(webSocket).usedInResponse = true;
    responseSockets.set(response, webSocket);
    Object.defineProperty(response, "webSocket", { value: webSocket });
    return response;
  };
  Reflect.set(scope, "Response", new Proxy(NativeResponse, { construct }));
  Reflect.set(scope, "WebSocketPair", WebSocketPair);
  Reflect.set(scope, "WebSocketRequestResponsePair", WebSocketRequestResponsePair);
  const NativeWebSocket = scope.WebSocket;
  if (typeof NativeWebSocket === "function") {
    Object.defineProperty(NativeWebSocket, Symbol.hasInstance, {
      value: (value: unknown) =>
        value instanceof WorkerWebSocket ||
        Function.prototype[Symbol.hasInstance].call(NativeWebSocket, value),
    });
  }
}

/** Connects a socket to its hub: operations it buffered while unattached go out now. */
export function attachSocket(ws: WorkerWebSocket, hub: SocketSink): void {
  const state = socketInternals(ws);
  state.hub = hub;
  if (state.attached || state.sockId === null) return;
  state.attached = true;
  const sockId = state.sockId;
  if (state.attachment !== null) {
    hub.push({ op: "attachment", sockId, attachment: state.attachment });
  }
  for (const op of state.pending) pushOp(hub, sockId, op);
  state.pending = [];
}

/** Delivers a message to an `accept()`-ed socket's listeners. */
export function dispatchMessage(ws: WorkerWebSocket, data: string | ArrayBuffer): void {
  const payload = typeof data === "string" || ws.binaryType === "arraybuffer"
    ? data
    : new Blob([data]);
  fire(ws, new MessageEvent("message", { data: payload }), ws.onmessage);
}

/** Delivers the client's close to an `accept()`-ed socket's listeners. */
export function dispatchClose(
  ws: WorkerWebSocket,
  close: { code: number; reason: string; wasClean: boolean },
): void {
  fire(ws, new CloseEvent("close", close), ws.onclose);
}

/** Delivers an error to an `accept()`-ed socket's listeners. */
export function dispatchError(ws: WorkerWebSocket, message: string): void {
  fire(ws, new ErrorEvent("error", { message, error: new Error(message) }), ws.onerror);
}

/**
 * Dispatches `event` to the listeners and the `on…` handler. A listener that throws would be
 * reported as an uncaught error of the whole worker; its error is caught and rethrown here, so
 * the runtime logs it as a failure of this one event.
 */
function fire<E extends Event>(
  ws: WorkerWebSocket,
  event: E,
  handler: ((event: E) => unknown) | null,
): void {
  const errors: unknown[] = [];
  const onError = (error: Event) => {
    error.preventDefault();
    errors.push(error instanceof ErrorEvent ? error.error : error);
  };
  globalThis.addEventListener("error", onError);
  try {
    ws.dispatchEvent(event);
    handler?.call(ws, event);
  } finally {
    globalThis.removeEventListener("error", onError);
  }
  if (errors.length > 0) throw errors[0];
}

function emit(state: SocketInternals, op: PendingOp): void {
  if (state.attached && state.sockId !== null && state.hub) pushOp(state.hub, state.sockId, op);
  else state.pending.push(op);
}

function pushOp(hub: SocketSink, sockId: number, op: PendingOp): void {
  if (op.kind === "send") {
    hub.push(
      { op: "send", sockIds: [sockId], data: op.data },
      typeof op.data === "string" ? undefined : op.data,
    );
  } else {
    hub.push({ op: "close", sockId, code: op.code, reason: op.reason });
  }
}

function wireData(message: unknown): string | ArrayBuffer {
  if (typeof message === "string") return message;
  if (message instanceof ArrayBuffer) return message.slice(0);
  if (ArrayBuffer.isView(message)) {
    const view = new Uint8Array(message.buffer, message.byteOffset, message.byteLength);
    return view.slice().buffer;
  }
  throw new TypeError(
    "Failed to execute 'send' on 'WebSocket': parameter 1 is not of type 'string or " +
      "ArrayBuffer or ArrayBufferView'.",
  );
}

/** Close codes an object may send: 1000–4999 except the reserved 1004, 1005, 1006, 1015. */
function validCloseCode(code: number): boolean {
  return Number.isInteger(code) && code >= 1000 && code <= 4999 &&
    code !== 1004 && code !== 1005 && code !== 1006 && code !== 1015;
}
