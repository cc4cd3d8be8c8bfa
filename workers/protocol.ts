/**
 * The one message contract between the host (main thread) and an instance worker.
 *
 * Every live Durable Object instance runs in its own `node:worker_threads` worker. The host
 * posts {@linkcode HostMessage}s; the worker answers with {@linkcode WorkerMessage}s. Each union
 * has a single `type` discriminant and both sides consume it with one exhaustive `switch`.
 * Request and response bodies are `ArrayBuffer`s moved in the transfer list, never copied.
 *
 * This is the only file under `workers/` that `src/` may import.
 */

import { createHash } from "node:crypto";

/** Log levels shared by the host logger and the worker's console forwarding. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** A header list as sent across the boundary (order and duplicates kept). */
export type WireHeaders = [string, string][];

/** An HTTP request crossing into the worker. */
export interface WireRequest {
  url: string;
  method: string;
  headers: WireHeaders;
  body: ArrayBuffer | null;
}

/** An HTTP response crossing back to the host. `webSocket` names the client end of a pair. */
export interface WireResponse {
  status: number;
  statusText: string;
  headers: WireHeaders;
  body: ArrayBuffer | null;
  webSocket?: WireSocketAccept;
}

/** How the object accepted the socket it returned in a 101 response. */
export interface WireSocketAccept {
  sockId: number;
  hibernatable: boolean;
  tags: string[];
}

/** An error that crosses the boundary: enough to rebuild it on the other side. */
export interface WireError {
  name: string;
  message: string;
  /** A stable machine code such as `USER_EXCEPTION` or `CONSTRUCTOR_FAILED`. */
  code: string;
  /** Set when the error came from an object reset (`ctx.abort`, a failed `blockConcurrencyWhile`). */
  reset?: boolean;
  /** Set for overload-class errors (answered with HTTP 503). */
  overloaded?: boolean;
}

/** One export of a deployed module, as the deploy-time inspection saw it. */
export interface WireExport {
  name: string;
  kind: "class" | "function" | "other";
}

/** A namespace binding the object sees in `env` (one per class of the app). */
export interface WireBinding {
  /** The env key, `chat-room` → `CHAT_ROOM`. */
  binding: string;
  /** The class's URL name. */
  name: string;
}

/** A hibernatable socket handed to a fresh worker (it survives hibernation on the host). */
export interface WireHibernatedSocket {
  sockId: number;
  tags: string[];
  /** The serialized attachment bytes, or null when none was set. */
  attachment: Uint8Array | null;
  autoResponseAt: number | null;
  readyState: number;
}

/** Everything a worker needs to become one instance. */
export interface InstanceInit {
  appId: string;
  /** The class's URL name (`chat-room`). */
  className: string;
  /** The bundled ES module of the class (JavaScript). */
  code: string;
  /** The exported class name inside `code`. */
  exportName: string;
  idHex: string;
  /** The instance name (`ctx.id.name`), or null for ids made by `newUniqueId`. */
  name: string | null;
  /** Absolute path of this instance's SQLite file. */
  dbPath: string;
  env: Record<string, string>;
  bindings: WireBinding[];
  maxKeyBytes: number;
  maxValueBytes: number;
  /** Hibernatable sockets that outlived the previous worker of this instance. */
  sockets: WireHibernatedSocket[];
  autoResponse: { request: string; response: string } | null;
  eventTimeoutMs: number | null;
}

/** Why the host stops a worker. */
export type StopReason = "redeploy" | "delete" | "idle" | "shutdown" | "evict" | "hibernate";

/** Host → worker. */
export type HostMessage =
  | { type: "init"; init: InstanceInit }
  | { type: "inspect"; code: string }
  | { type: "fetch"; reqId: number; req: WireRequest }
  | { type: "alarm"; reqId: number; retryCount: number; scheduledTime: number }
  | { type: "rpc"; reqId: number; method: string; args: Uint8Array }
  | { type: "call-result"; callId: number; ok: boolean; payload: Uint8Array | WireResponse }
  | { type: "ws-message"; sockId: number; data: string | ArrayBuffer }
  | { type: "ws-close"; sockId: number; code: number; reason: string; wasClean: boolean }
  | { type: "ws-error"; sockId: number; message: string }
  | { type: "ping"; seq: number }
  | { type: "stop"; reason: StopReason };

/**
 * Worker → host. `cpu` on answers is the worker thread's cumulative CPU time in µs
 * (`process.threadCpuUsage`, 10 ms granularity): the host meters the deltas.
 */
export type WorkerMessage =
  | { type: "ready" }
  | { type: "inspected"; exports: WireExport[] }
  | { type: "init-error"; error: WireError }
  | { type: "response"; reqId: number; res: WireResponse; cpu: number }
  | { type: "rpc-result"; reqId: number; value: Uint8Array; cpu: number }
  | { type: "error"; reqId: number; error: WireError; cpu: number }
  | { type: "call"; callId: number; call: WireCall }
  | { type: "ws-send"; sockId: number; data: string | ArrayBuffer }
  | { type: "ws-close"; sockId: number; code: number | null; reason: string }
  | { type: "ws-state"; sockId: number; attachment: Uint8Array | null }
  | { type: "ws-auto-response"; pair: { request: string; response: string } | null }
  | { type: "ws-event-timeout"; ms: number | null }
  | { type: "alarm-set"; at: number | null }
  | { type: "abort"; reason: string; retryAlarm: boolean }
  | { type: "log"; level: LogLevel; message: string }
  | { type: "pong"; seq: number }
  | { type: "stopped" };

/** A call from one object to another through an `env` namespace binding. */
export type WireCall =
  | { kind: "fetch"; target: WireTarget; req: WireRequest; depth: number }
  | { kind: "rpc"; target: WireTarget; method: string; args: Uint8Array; depth: number };

/** Which instance a cross-object call reaches. */
export interface WireTarget {
  className: string;
  idHex: string;
  name: string | null;
}

/**
 * The source of the virtual `cloudflare:workers` module the deploy bundler inlines: it reads
 * the exports the worker bootstrap placed on `globalThis.__CF` (see `runtime.ts`).
 */
export const CLOUDFLARE_WORKERS_SHIM = [
  "const cf = globalThis.__CF;",
  "export const DurableObject = cf.DurableObject;",
  "export const RpcTarget = cf.RpcTarget;",
  "export const WorkerEntrypoint = cf.WorkerEntrypoint;",
  "export const env = cf.env;",
  "export const waitUntil = cf.waitUntil;",
].join("\n");

/** Upper bound on the stub call chain A → B → C …; deeper calls fail with a clear error. */
export const MAX_CALL_DEPTH = 16;

/**
 * The 64-hex id of the object `name` in `namespace` (`<appId>/<class>`): 32 hex of name hash
 * followed by 32 hex that check the first half, so `idFromString` can reject foreign ids.
 */
export function objectIdFromName(namespace: string, name: string): string {
  return withCheck(namespace, sha256Hex(`name\0${namespace}\0${name}`).slice(0, 32));
}

/** A fresh random id in `namespace` (what `newUniqueId()` returns). */
export function newUniqueObjectId(namespace: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return withCheck(namespace, Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(""));
}

/** Whether `hex` is a well-formed id of `namespace`. */
export function isObjectIdOf(namespace: string, hex: string): boolean {
  return /^[0-9a-f]{64}$/.test(hex) && withCheck(namespace, hex.slice(0, 32)) === hex;
}

function withCheck(namespace: string, first: string): string {
  return first + sha256Hex(`check\0${namespace}\0${first}`).slice(0, 32);
}

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

// Conversions between fetch API objects and the wire shapes, used on both sides.

/** Builds the `Request` user code receives. */
export function requestFromWire(wire: WireRequest): Request {
  const hasBody = wire.body !== null && wire.method !== "GET" && wire.method !== "HEAD";
  return new Request(wire.url, {
    method: wire.method,
    headers: wire.headers,
    body: hasBody ? wire.body : null,
  });
}

/** Reads a `Request` into its wire shape (the body is read fully). */
export async function requestToWire(request: Request): Promise<WireRequest> {
  const body = request.body ? await request.arrayBuffer() : null;
  return { url: request.url, method: request.method, headers: headerList(request.headers), body };
}

/** Reads a `Response` into its wire shape (the body is read fully). */
export async function responseToWire(response: Response): Promise<WireResponse> {
  const body = response.body ? await response.arrayBuffer() : null;
  return {
    status: response.status,
    statusText: response.statusText,
    headers: headerList(response.headers),
    body,
  };
}

/** Builds a `Response` from its wire shape. */
export function responseFromWire(wire: WireResponse): Response {
  const nullBody = wire.status === 204 || wire.status === 205 || wire.status === 304;
  return new Response(nullBody ? null : wire.body, {
    status: wire.status,
    statusText: wire.statusText,
    headers: wire.headers,
  });
}

/** The header pairs of a `Headers` object, `set-cookie` entries kept apart. */
export function headerList(headers: Headers): WireHeaders {
  return [...headers];
}
