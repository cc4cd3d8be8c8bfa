/**
 * WebSockets across the worker boundary: the host owns every client connection
 * (`Deno.upgradeWebSocket`) and relays frames to and from the object's worker.
 *
 * An upgrade on `/_do/<name>/<id>` passes the same access check as HTTP (a `token` query
 * parameter may stand in for the `Authorization` header, which browsers cannot set) and
 * reaches the object's `fetch`. A 101 answer names the object's socket; the host upgrades and
 * tells the worker (`ws-attached`). From then on:
 *
 * - Client messages queue per socket and go to the worker at most {@linkcode WINDOW} at a
 *   time; the worker acknowledges each once its event is dispatched, so a slow object holds
 *   the client back instead of growing a queue without limit. An over-full queue closes the
 *   socket with 1011; a message over 32 MiB closes it with 1009. A text message equal to the
 *   auto-response request is answered here, without the worker.
 * - The worker's `ws-out` batches carry sends, closes and attachment changes. Sends to a client
 *   that does not read beyond {@linkcode MAX_OUTBOX_BYTES} close it with 1011.
 * - Hibernation: an instance whose sockets are all hibernatable, with nothing in flight and
 *   no event for `--hibernate-after` seconds, is asked whether it is idle (no timer, no
 *   waitUntil, no socket handler running) and, if so, stopped. Its sockets stay here; the next
 *   event starts a worker that receives them in `InstanceInit`.
 * - A reset (ctx.abort, crash, limits) closes the instance's sockets with 1011; a redeploy,
 *   env change or delete with 1012; shutdown with 1001. An upgrade the object answered just
 *   before one of those closes gets the same code.
 */

import type { Context } from "hono";
import {
  responseFromWire,
  type WireError,
  type WireRequest,
  type WireResponse,
  type WorkerMessage,
} from "../workers/protocol.ts";
import type { Config } from "./config.ts";
import {
  type DispatchDeps,
  forwardedHeaders,
  instanceErrorResponse,
  resolveRequest,
} from "./dispatch.ts";
import {
  type Instance,
  InstanceError,
  instanceKey,
  type InstanceManager,
  type InstanceTarget,
} from "./instances.ts";
import type { Logger } from "./log.ts";
import {
  HostSocket,
  type Inbound,
  type InstanceSockets,
  MAX_MESSAGE_BYTES,
  MAX_OUTBOX_BYTES,
  type SocketInit,
  SocketRegistry,
} from "./socket_registry.ts";

/** Client messages of one socket posted to the worker and not yet dispatched. */
export const WINDOW = 64;
/** How long a hibernation probe may go unanswered before it is retried. */
const PROBE_TIMEOUT_MS = 5_000;
const RESET_REASON = "Durable Object connection closed because the object was reset.";
const DISCONNECTED = "WebSocket disconnected without sending Close frame.";
/** Response headers the upgrade sets itself. */
const HANDSHAKE_HEADERS = new Set([
  "connection",
  "upgrade",
  "sec-websocket-accept",
  "sec-websocket-protocol",
  "sec-websocket-extensions",
  "content-length",
]);

/** Worker messages about sockets. */
export type SocketWorkerMessage = Extract<WorkerMessage, { type: "ws-out" | "ws-idle" }>;

/** What the instance manager asks of the socket side. */
export interface InstanceSocketHooks {
  /** The socket fields of a new worker's `InstanceInit`. */
  initFor(key: string): SocketInit;
  /** A socket message from `instance`'s worker. */
  onMessage(instance: Instance, message: SocketWorkerMessage): void;
  /** `instance`'s worker is gone; `error` is set when it was reset or crashed. */
  onExit(instance: Instance, error: WireError | null): void;
  /** Open sockets keep the idle sweeper away (hibernation is decided here instead). */
  holds(key: string): boolean;
  /** Closes the sockets of a class, an app (className null) or everything (both null). */
  closeAll(
    appId: string | null,
    className: string | null,
    reason: "redeploy" | "delete" | "shutdown",
  ): void;
}

/** A {@linkcode WebSocketBridge.closeAll} call: what it closed sockets with, and when. */
interface MassClose {
  seq: number;
  code: number;
  reason: string;
}

/** Options for {@linkcode WebSocketBridge}. */
export interface BridgeOptions {
  config: Config;
  logger: Logger;
  /** The instance manager (built after the bridge, which it takes as its socket hooks). */
  instances: () => InstanceManager;
}

/** Client WebSockets of every instance, and their hibernation. */
export class WebSocketBridge implements InstanceSocketHooks {
  readonly registry: SocketRegistry;
  readonly #options: BridgeOptions;
  readonly #sweeper: ReturnType<typeof setInterval>;
  #probeSeq = 0;
  #closed = false;
  /** The last mass close of everything, of each app and of each class ({@linkcode scopeKey}). */
  readonly #massCloses = new Map<string, MassClose>();
  #massCloseSeq = 0;

  constructor(options: BridgeOptions) {
    this.#options = options;
    this.registry = new SocketRegistry((key) => this.#live(key) !== undefined);
    const everyMs = Math.min(1_000, Math.max(100, options.config.hibernateAfterSec * 250));
    this.#sweeper = setInterval(() => this.#sweep(), everyMs);
  }

  /** Handles a WebSocket upgrade on `/_do/*`. */
  async upgrade(c: Context, deps: DispatchDeps): Promise<Response> {
    const resolved = await resolveRequest(c, deps, { queryToken: true });
    if (resolved instanceof Response) return resolved;
    const { target } = resolved;
    deps.usage.countRequest(target.app.appId, target.record.name, target.idHex, target.name);
    const req: WireRequest = {
      url: c.req.url,
      method: c.req.method,
      headers: forwardedHeaders(c.req.raw.headers),
      body: null,
    };
    const closesBefore = this.#massCloseSeq;
    let res: WireResponse;
    try {
      res = await deps.instances.fetch(target, req);
    } catch (error) {
      if (error instanceof InstanceError) return instanceErrorResponse(error);
      throw error;
    }
    const accept = res.webSocket;
    if (!accept) {
      if (res.status === 101) return plain(500, "Internal Server Error");
      return responseFromWire(res);
    }
    const key = instanceKey(target);
    let upgraded: { socket: WebSocket; response: Response };
    try {
      const protocol = headerOf(res, "sec-websocket-protocol");
      upgraded = Deno.upgradeWebSocket(c.req.raw, protocol ? { protocol } : {});
    } catch {
      this.#live(key)?.host.post({
        type: "ws-close",
        sockId: accept.sockId,
        code: 1006,
        reason: DISCONNECTED,
        wasClean: false,
      });
      return plain(400, "invalid WebSocket upgrade request");
    }
    copyHeaders(res, upgraded.response);
    // A redeploy, env change, delete or shutdown while the answer was on its way stopped the
    // object: its socket closes as the others did, and no worker hears of it.
    const massClose = this.#massCloseSince(target, closesBefore);
    if (massClose) {
      upgraded.socket.onopen = () => upgraded.socket.close(massClose.code, massClose.reason);
      return upgraded.response;
    }
    const entry = this.registry.ensure(key, target);
    entry.target = target;
    const live = this.#live(key);
    const socket = new HostSocket(upgraded.socket, { ...accept, owner: live ?? null });
    entry.add(socket);
    this.#listen(entry, socket);
    if (live) live.host.post({ type: "ws-attached", sockId: accept.sockId });
    else if (!accept.hibernatable) this.#end(entry, socket, 1011, RESET_REASON);
    return upgraded.response;
  }

  /**
   * Operator eviction: stops the instance's worker now. `hibernate` keeps its hibernatable
   * sockets (the next event wakes it); `close` closes every socket with 1001 first.
   */
  async evict(
    key: string,
    mode: "hibernate" | "close",
  ): Promise<{ evicted: boolean; sockets: number }> {
    const entry = this.registry.get(key);
    if (mode === "close" && entry) {
      for (const socket of [...entry.sockets.values()]) {
        this.#end(entry, socket, 1001, "Durable Object was evicted");
      }
    }
    const evicted = await this.#options.instances().stopInstance(key, "evict");
    return { evicted, sockets: this.registry.count(key) };
  }

  /** Stops the hibernation sweeper (the instance manager closes the sockets). */
  close(): void {
    clearInterval(this.#sweeper);
  }

  // ---- hooks of the instance manager ----

  initFor(key: string): SocketInit {
    return this.registry.get(key)?.init() ??
      { sockets: [], autoResponse: null, eventTimeoutMs: null, nextSockId: 1 };
  }

  holds(key: string): boolean {
    return this.registry.count(key) > 0;
  }

  onMessage(instance: Instance, message: SocketWorkerMessage): void {
    if (message.type === "ws-idle") {
      this.#probed(instance, message.seq, message.idle);
      return;
    }
    const entry = this.registry.ensure(instance.key, instance.target);
    entry.lastActivity = Date.now();
    let acked = false;
    for (const op of message.ops) {
      switch (op.op) {
        case "send":
          for (const sockId of op.sockIds) {
            const socket = entry.sockets.get(sockId);
            if (socket && !socket.send(op.data)) {
              this.#fail(entry, socket, 1011, "Client is too slow", {
                message: `Too much data queued for the client (over ${MAX_OUTBOX_BYTES} bytes).`,
              });
            }
          }
          break;
        case "close":
          entry.sockets.get(op.sockId)?.close(op.code, op.reason);
          break;
        case "attachment": {
          const socket = entry.sockets.get(op.sockId);
          if (socket) socket.attachment = op.attachment;
          break;
        }
        case "ack": {
          const socket = entry.sockets.get(op.sockId);
          if (socket && entry.worker === instance) socket.acknowledge(op.count);
          acked = true;
          break;
        }
        case "auto-response":
          entry.autoResponse = op.pair;
          break;
        case "event-timeout":
          entry.eventTimeoutMs = op.ms;
          break;
        default: {
          const unknown: never = op;
          throw new Error(`Unknown socket operation ${JSON.stringify(unknown)}`);
        }
      }
    }
    if (acked) this.#pump(entry);
  }

  onExit(instance: Instance, error: WireError | null): void {
    const entry = this.registry.get(instance.key);
    if (!entry) return;
    if (entry.probe) entry.probe = null;
    const live = this.#live(instance.key);
    const sole = live === undefined || live === instance;
    for (const socket of [...entry.sockets.values()]) {
      if (error && (sole || socket.owner === instance)) {
        this.#end(entry, socket, 1011, RESET_REASON);
      } else if (socket.owner === instance) {
        // An accept()-ed socket lives in its worker's memory: it cannot outlive it.
        this.#end(entry, socket, 1001, "Durable Object was evicted");
      }
    }
    if (entry.worker === instance) {
      for (const socket of entry.sockets.values()) {
        socket.requeue();
        if (socket.inbox.length > 0) entry.waiting.add(socket);
      }
      entry.worker = null;
    }
    if (entry.sockets.size === 0 && sole) this.registry.delete(entry.key);
    else this.#pump(entry);
  }

  closeAll(
    appId: string | null,
    className: string | null,
    reason: "redeploy" | "delete" | "shutdown",
  ): void {
    if (reason === "shutdown") {
      this.#closed = true;
      this.close();
    }
    const code = reason === "shutdown" ? 1001 : 1012;
    const text = reason === "shutdown"
      ? "Server shutting down"
      : `Durable Object class was ${reason === "delete" ? "deleted" : "redeployed"}`;
    const seq = ++this.#massCloseSeq;
    this.#massCloses.set(scopeKey(appId, className), { seq, code, reason: text });
    for (const entry of this.registry.matching(appId, className)) {
      for (const socket of [...entry.sockets.values()]) this.#end(entry, socket, code, text);
      this.registry.delete(entry.key);
    }
  }

  // ---- client events ----

  #listen(entry: InstanceSockets, socket: HostSocket): void {
    const ws = socket.ws;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => socket.opened();
    ws.onmessage = (event: MessageEvent) => this.#fromClient(entry, socket, event.data);
    ws.onclose = (event: CloseEvent) => this.#clientClosed(entry, socket, event);
    // An error is followed by a close event, which is what the object hears about.
    ws.onerror = (event) => event.preventDefault();
  }

  #fromClient(entry: InstanceSockets, socket: HostSocket, data: unknown): void {
    if (socket.detached || socket.inboundDone) return;
    if (typeof data !== "string" && !(data instanceof ArrayBuffer)) return;
    const bytes = typeof data === "string" ? data.length : data.byteLength;
    if (bytes > MAX_MESSAGE_BYTES || (typeof data === "string" && utf8Over(data))) {
      this.#fail(entry, socket, 1009, "Message too big", {
        message: `WebSocket message is larger than ${MAX_MESSAGE_BYTES} bytes.`,
      });
      return;
    }
    const pair = entry.autoResponse;
    if (socket.hibernatable && pair && data === pair.request) {
      if (!socket.send(pair.response)) {
        this.#fail(entry, socket, 1011, "Client is too slow", {
          message: `Too much data queued for the client (over ${MAX_OUTBOX_BYTES} bytes).`,
        });
        return;
      }
      const at = Date.now();
      socket.autoResponseAt = at;
      this.#live(entry.key)?.host.post({ type: "ws-auto-responded", sockId: socket.sockId, at });
      return;
    }
    entry.lastActivity = Date.now();
    entry.waiting.add(socket);
    if (!socket.enqueue({ kind: "message", data, bytes })) {
      this.#fail(entry, socket, 1011, "Too much data queued", {
        message: "Too many messages queued for the Durable Object; the socket was closed.",
      });
      return;
    }
    this.#pump(entry);
  }

  #clientClosed(entry: InstanceSockets, socket: HostSocket, event: CloseEvent): void {
    socket.clientGone = true;
    if (socket.detached || socket.inboundDone) return;
    socket.inboundDone = true;
    entry.waiting.add(socket);
    const clean = event.wasClean && event.code !== 1006 && event.code !== 0;
    socket.enqueue(
      clean
        ? { kind: "close", code: event.code || 1005, reason: event.reason, wasClean: true }
        : { kind: "close", code: 1006, reason: DISCONNECTED, wasClean: false },
    );
    entry.lastActivity = Date.now();
    this.#pump(entry);
  }

  /** Closes a socket for a host reason and tells the object through `error`. */
  #fail(
    entry: InstanceSockets,
    socket: HostSocket,
    code: number,
    reason: string,
    error: { message: string },
  ): void {
    if (socket.inboundDone || socket.detached) return;
    socket.inboundDone = true;
    socket.inbox = [{ kind: "error", message: error.message }];
    socket.inboxBytes = 0;
    entry.waiting.add(socket);
    socket.close(code, reason);
    this.#pump(entry);
  }

  /** Closes a socket without telling the object (it is being reset, replaced or stopped). */
  #end(entry: InstanceSockets, socket: HostSocket, code: number, reason: string): void {
    socket.detached = true;
    socket.close(code, reason);
    entry.sockets.delete(socket.sockId);
    entry.waiting.delete(socket);
  }

  // ---- delivery to the worker ----

  /** Posts queued client events to the instance, waking it when it is not running. */
  #pump(entry: InstanceSockets): void {
    if (this.#closed || !entry.hasInbox) return;
    const live = this.#live(entry.key);
    // Messages the previous worker did not dispatch go first: wait for its exit to requeue them.
    if (entry.worker && entry.worker !== live && entry.hasUnacked) return;
    if (live) {
      this.#post(entry, live);
      return;
    }
    if (entry.waking) return;
    entry.waking = true;
    this.#options.instances().acquire(entry.target).then(
      () => {
        entry.waking = false;
        if (this.#live(entry.key)) this.#pump(entry);
      },
      (error) => {
        entry.waking = false;
        this.#options.logger.log("warn", `Cannot wake instance for its sockets: ${error}`, {
          instance: entry.key,
        });
        for (const socket of [...entry.sockets.values()]) {
          this.#end(entry, socket, 1011, RESET_REASON);
        }
        this.registry.delete(entry.key);
      },
    );
  }

  #post(entry: InstanceSockets, instance: Instance): void {
    entry.worker = instance;
    for (const socket of [...entry.waiting]) {
      if (socket.detached) {
        entry.waiting.delete(socket);
        continue;
      }
      while (socket.inbox.length > 0) {
        const event = socket.inbox[0] as Inbound;
        if (event.kind === "message") {
          if (!socket.mayPost(WINDOW, event.bytes)) break;
          socket.inbox.shift();
          socket.inboxBytes -= event.bytes;
          socket.unacked.push(event);
          socket.unackedBytes += event.bytes;
          instance.host.post({ type: "ws-message", sockId: socket.sockId, data: event.data });
          continue;
        }
        socket.inbox.shift();
        instance.host.post(
          event.kind === "close"
            ? { type: "ws-close", sockId: socket.sockId, ...withoutKind(event) }
            : { type: "ws-error", sockId: socket.sockId, message: event.message },
        );
        socket.detached = true;
        entry.sockets.delete(socket.sockId);
        break;
      }
      if (socket.inbox.length === 0 || socket.detached) entry.waiting.delete(socket);
    }
  }

  // ---- hibernation ----

  #sweep(): void {
    const now = Date.now();
    const afterMs = this.#options.config.hibernateAfterSec * 1000;
    for (const entry of this.registry.entries()) {
      if (entry.probe) {
        if (now - entry.probe.sentAt > PROBE_TIMEOUT_MS) entry.probe = null;
        continue;
      }
      if (entry.sockets.size === 0) continue;
      const live = this.#live(entry.key);
      if (!live || !hibernatable(entry, live, now, afterMs)) continue;
      const seq = ++this.#probeSeq;
      entry.probe = { seq, sentAt: now, activity: entry.lastActivity, lastActive: live.lastActive };
      live.host.post({ type: "ws-probe", seq });
    }
  }

  #probed(instance: Instance, seq: number, idle: boolean): void {
    const entry = this.registry.get(instance.key);
    const probe = entry?.probe;
    if (!entry || !probe || probe.seq !== seq) return;
    entry.probe = null;
    if (!idle || this.#live(entry.key) !== instance) return;
    if (entry.lastActivity !== probe.activity || instance.lastActive !== probe.lastActive) return;
    if (!hibernatable(entry, instance, Date.now(), 0)) return;
    this.#options.instances().stopInstance(entry.key, "hibernate").catch((error) =>
      this.#options.logger.log("warn", `Hibernation failed: ${error}`, { instance: entry.key })
    );
  }

  #live(key: string): Instance | undefined {
    return this.#options.instances().liveInstance(key);
  }

  /** The mass close that covered `target` after close number `seq`, if there was one. */
  #massCloseSince(target: InstanceTarget, seq: number): MassClose | null {
    const { appId } = target.app;
    const scopes = [
      scopeKey(null, null),
      scopeKey(appId, null),
      scopeKey(appId, target.record.name),
    ];
    for (const scope of scopes) {
      const close = this.#massCloses.get(scope);
      if (close && close.seq > seq) return close;
    }
    return null;
  }
}

/** The key of a mass close: everything (both null), an app (className null) or a class. */
function scopeKey(appId: string | null, className: string | null): string {
  return `${appId ?? ""}/${className ?? ""}`;
}

/** Sockets all hibernatable, nothing queued or in flight, no event for `afterMs`. */
function hibernatable(
  entry: InstanceSockets,
  live: Instance,
  now: number,
  afterMs: number,
): boolean {
  if (live.host.pending > 0 || entry.waking || entry.hasInbox || entry.hasUnacked) return false;
  for (const socket of entry.sockets.values()) if (!socket.hibernatable) return false;
  return now - Math.max(entry.lastActivity, live.lastActive) >= afterMs;
}

function withoutKind(
  event: Extract<Inbound, { kind: "close" }>,
): { code: number; reason: string; wasClean: boolean } {
  return { code: event.code, reason: event.reason, wasClean: event.wasClean };
}

/** Whether a string's UTF-8 form is over the message limit (only long strings are encoded). */
function utf8Over(text: string): boolean {
  return text.length * 3 > MAX_MESSAGE_BYTES &&
    new TextEncoder().encode(text).length > MAX_MESSAGE_BYTES;
}

function headerOf(res: WireResponse, name: string): string | undefined {
  return res.headers.find(([key]) => key.toLowerCase() === name)?.[1];
}

/** Copies the object's 101 response headers (cookies, …) onto the upgrade response. */
function copyHeaders(res: WireResponse, response: Response): void {
  for (const [name, value] of res.headers) {
    if (HANDSHAKE_HEADERS.has(name.toLowerCase())) continue;
    try {
      response.headers.append(name, value);
    } catch {
      return;
    }
  }
}

function plain(status: number, body: string): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain;charset=UTF-8" } });
}

/** Whether `request` asks for a WebSocket (`Upgrade: websocket`). */
export function isWebSocketUpgrade(request: Request): boolean {
  return request.headers.get("upgrade")?.toLowerCase() === "websocket";
}
