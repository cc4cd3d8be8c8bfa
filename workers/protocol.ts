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

/**
 * Codes of storage failures that are not the object's doing: the disk is full, the write would
 * pass `--max-storage-bytes`, the database file is corrupt, or it cannot be opened or locked.
 */
export type StorageFaultCode = typeof STORAGE_FAULT_CODES[number];

const STORAGE_FAULT_CODES = [
  "STORAGE_FULL",
  "STORAGE_LIMIT_EXCEEDED",
  "STORAGE_CORRUPTED",
  "STORAGE_UNAVAILABLE",
] as const;

/** Whether `code` is a {@linkcode StorageFaultCode}. */
export function isStorageFaultCode(code: string): code is StorageFaultCode {
  return (STORAGE_FAULT_CODES as readonly string[]).includes(code);
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
  /** 1 (OPEN), or 2 (CLOSING) when the client's close is about to be delivered. */
  readyState: number;
}

/** The auto-response pair of `ctx.setWebSocketAutoResponse`. */
export interface WireAutoResponse {
  request: string;
  response: string;
}

/**
 * What an object does to its client sockets. The worker batches the operations of one turn
 * into one `ws-out` message, sent after the turn's writes commit (the output gate).
 */
export type WireSocketOp =
  /** One message for several sockets (a broadcast of the same string is sent once). */
  | { op: "send"; sockIds: number[]; data: string | ArrayBuffer }
  | { op: "close"; sockId: number; code: number | null; reason: string }
  | { op: "attachment"; sockId: number; attachment: Uint8Array | null }
  /** `count` more `ws-message`s of the socket were dispatched (the host's flow control). */
  | { op: "ack"; sockId: number; count: number }
  | { op: "auto-response"; pair: WireAutoResponse | null }
  | { op: "event-timeout"; ms: number | null };

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
  /** Largest database file (pages × page size) before writes fail; null for no limit. */
  maxStorageBytes?: number | null;
  /** Hibernatable sockets that outlived the previous worker of this instance. */
  sockets: WireHibernatedSocket[];
  autoResponse: WireAutoResponse | null;
  eventTimeoutMs: number | null;
  /** How long `blockConcurrencyWhile` may wait before the object is reset (default 30 s). */
  blockTimeoutMs?: number;
  /** The memory limit the worker checks itself against (heap + `ArrayBuffer`s); unset: none. */
  memoryLimitMb?: number;
  /** The first socket id this worker may assign (ids of earlier workers stay unique). */
  nextSockId: number;
}

/**
 * How a worker reaches the network: the host's SOCKS5 egress proxy, which applies the
 * server's outbound policy. Handed over as `workerData` (never as a message user code could
 * see). Absent: the worker has no network access at all.
 */
export interface WorkerEgress {
  /** `socks5://127.0.0.1:<port>`. */
  url: string;
  username: string;
  password: string;
}

/** Why the host stops a worker. */
export type StopReason = "redeploy" | "delete" | "idle" | "shutdown" | "evict" | "hibernate";

/** Host → worker. */
export type HostMessage =
  | { type: "init"; init: InstanceInit }
  | { type: "inspect"; code: string }
  | { type: "fetch"; reqId: number; req: WireRequest; depth?: number }
  | { type: "alarm"; reqId: number; retryCount: number; scheduledTime: number }
  | { type: "rpc"; reqId: number; method: string; args: Uint8Array; depth: number }
  | { type: "call-result"; callId: number; result: WireCallResult }
  /** The client of a socket returned in a 101 response is connected: its sends may flow. */
  | { type: "ws-attached"; sockId: number }
  | { type: "ws-message"; sockId: number; data: string | ArrayBuffer }
  | { type: "ws-close"; sockId: number; code: number; reason: string; wasClean: boolean }
  | { type: "ws-error"; sockId: number; message: string }
  /** The host answered an auto-response on the socket at `at` (ms since the epoch). */
  | { type: "ws-auto-responded"; sockId: number; at: number }
  /** May the instance hibernate now? Answered with `ws-idle`. */
  | { type: "ws-probe"; seq: number }
  | { type: "ping"; seq: number }
  | { type: "stop"; reason: StopReason };

/**
 * Worker → host. `cpu` on answers is the worker thread's cumulative CPU time in µs
 * (`process.threadCpuUsage`, 10 ms granularity): the host meters the deltas.
 */
export type WorkerMessage =
  /** The bootstrap finished; `threadId` names the OS thread (`worker-<threadId>`). */
  | { type: "ready"; threadId: number; cpu: number }
  | { type: "inspected"; exports: WireExport[] }
  | { type: "init-error"; error: WireError }
  | { type: "response"; reqId: number; res: WireResponse; cpu: number }
  | { type: "rpc-result"; reqId: number; value: Uint8Array; cpu: number }
  | { type: "alarm-result"; reqId: number; result: WireAlarmResult; cpu: number }
  | { type: "error"; reqId: number; error: WireError; cpu: number }
  | { type: "call"; callId: number; call: WireCall }
  | { type: "ws-out"; ops: WireSocketOp[] }
  /** Answer to `ws-probe`: nothing runs or waits (timers, waitUntil, socket events). */
  | { type: "ws-idle"; seq: number; idle: boolean }
  | { type: "alarm-set"; at: number | null }
  /** `code` names a storage fault that forced the reset (OBJECT_RESET when unset). */
  | {
    type: "abort";
    reason: string;
    retryAlarm: boolean;
    overloaded?: boolean;
    code?: StorageFaultCode;
  }
  | { type: "log"; level: LogLevel; message: string }
  /**
   * The worker's V8 heap plus `ArrayBuffer` bytes (`workers/memory_guard.ts`): a report when
   * it moved to another eighth of the limit, or `exceeded` (then the worker is frozen).
   */
  | { type: "memory"; bytes: number; exceeded: boolean }
  | { type: "pong"; seq: number }
  | { type: "stopped" };

/** A call from one object to another through an `env` namespace binding. */
export type WireCall =
  | { kind: "fetch"; target: WireTarget; req: WireRequest; depth: number }
  | { kind: "rpc"; target: WireTarget; method: string; args: Uint8Array; depth: number };

/** How a cross-object call ended, as the caller's worker receives it. */
export type WireCallResult =
  | { ok: true; res: WireResponse }
  | { ok: true; value: Uint8Array }
  | { ok: false; error: WireError };

/** What one `alarm` event did; the host's scheduler decides the next delivery from it. */
export interface WireAlarmResult {
  /** False when no alarm was due (a stale host timer): nothing ran. */
  ran: boolean;
  /** The handler's error, or null when it succeeded. */
  error: WireError | null;
  /** The alarm stored after the run, or null. */
  next: number | null;
  /** The failed alarm stays set for a retry (the handler neither replaced nor deleted it). */
  retry: boolean;
}

/** Retries of a failing alarm after the first attempt (2 s, 4 s, … 64 s, as Cloudflare). */
export const ALARM_MAX_RETRIES = 6;

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
  // Reading `response.body` first would turn a string or buffer body into a stream (about
  // 25 µs per response); `bytes()` reads the source directly. Only an empty result needs the
  // null-body check.
  const bytes = await response.bytes();
  const body = bytes.byteLength > 0
    ? (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
      ? bytes.buffer
      : bytes.slice().buffer)
    : response.body === null
    ? null
    : new ArrayBuffer(0);
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
