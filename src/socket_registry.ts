/**
 * The host's record of every client WebSocket, per instance: what must outlive the worker.
 *
 * Hibernation stops an instance's worker while its clients stay connected, so the host keeps
 * each socket's tags, attachment bytes and last auto-response time, and the instance's
 * auto-response pair and event timeout. A fresh worker receives them in its `InstanceInit`.
 * The registry also holds the two bounded queues of each socket: messages from the client
 * waiting for the object (while it wakes or is busy) and messages to a client whose handshake
 * has not finished. It implements {@linkcode SocketView} for inspection and metrics.
 */

import type { InstanceInit, WireAutoResponse, WireHibernatedSocket } from "../workers/protocol.ts";
import type { Instance, InstanceTarget } from "./instances.ts";
import type { SocketView } from "./socket_view.ts";

/** Largest message a client may send (Cloudflare's limit); larger ones close with 1009. */
export const MAX_MESSAGE_BYTES = 32 * 1024 * 1024;
/** Client messages queued for the object per socket before it is closed with 1011. */
export const MAX_INBOX_MESSAGES = 1024;
/** Bytes queued for the object per socket (one maximal message fits) before 1011. */
export const MAX_INBOX_BYTES = 64 * 1024 * 1024;
/** Bytes buffered towards a slow client per socket before it is closed with 1011. */
export const MAX_OUTBOX_BYTES = 16 * 1024 * 1024;

/** A client event waiting for (or delivered to and not yet acknowledged by) the object. */
export type Inbound =
  | { kind: "message"; data: string | ArrayBuffer; bytes: number }
  | { kind: "close"; code: number; reason: string; wasClean: boolean }
  | { kind: "error"; message: string };

/** One client connection. */
export class HostSocket {
  readonly sockId: number;
  readonly hibernatable: boolean;
  readonly tags: string[];
  readonly ws: WebSocket;
  /** The worker an `accept()`-ed socket belongs to: it cannot outlive that worker. */
  readonly owner: Instance | null;
  attachment: Uint8Array | null = null;
  autoResponseAt: number | null = null;
  /** The handshake finished: sends go straight to the client. */
  open = false;
  /** The host or the object started closing: nothing more is sent. */
  closing = false;
  /** The connection is closed (the client's close event was seen). */
  clientGone = false;
  /** No more client events are queued (the client closed, or the host failed the socket). */
  inboundDone = false;
  /** No longer the object's (reset, redeploy, its close was delivered): events are ignored. */
  detached = false;
  /** Client events not yet posted to the object. */
  inbox: Inbound[] = [];
  inboxBytes = 0;
  /** Messages posted to the current worker and not yet dispatched by it. */
  unacked: Inbound[] = [];
  unackedBytes = 0;
  #closeAfterOpen: { code: number | null; reason: string } | null = null;
  /** Messages to the client while its handshake is not finished. */
  #outbox: (string | ArrayBuffer)[] = [];
  #outboxBytes = 0;

  constructor(
    ws: WebSocket,
    accept: { sockId: number; hibernatable: boolean; tags: string[]; owner: Instance | null },
  ) {
    this.ws = ws;
    this.sockId = accept.sockId;
    this.hibernatable = accept.hibernatable;
    this.tags = accept.tags;
    this.owner = accept.hibernatable ? null : accept.owner;
  }

  /** Sends to the client; false when the outgoing buffer is over its limit. */
  send(data: string | ArrayBuffer): boolean {
    if (this.closing || this.clientGone) return true;
    const bytes = typeof data === "string" ? data.length : data.byteLength;
    if (!this.open) {
      this.#outboxBytes += bytes;
      this.#outbox.push(data);
      return this.#outboxBytes <= MAX_OUTBOX_BYTES;
    }
    if (this.ws.bufferedAmount + bytes > MAX_OUTBOX_BYTES) return false;
    try {
      this.ws.send(data);
    } catch {
      // the connection is going away; its close event follows
    }
    return true;
  }

  /** The handshake finished: flushes what the object sent meanwhile, or closes. */
  opened(): void {
    this.open = true;
    const outbox = this.#outbox;
    this.#outbox = [];
    this.#outboxBytes = 0;
    if (this.#closeAfterOpen) {
      const { code, reason } = this.#closeAfterOpen;
      this.#closeAfterOpen = null;
      this.#closeNow(code, reason);
      return;
    }
    for (const data of outbox) this.send(data);
  }

  /** Starts the closing handshake with the client (after its handshake, if still opening). */
  close(code: number | null, reason: string): void {
    if (this.closing || this.clientGone) return;
    this.closing = true;
    if (this.open) this.#closeNow(code, reason);
    else this.#closeAfterOpen = { code, reason };
  }

  #closeNow(code: number | null, reason: string): void {
    try {
      if (code === null) this.ws.close();
      else this.ws.close(code, reason);
    } catch {
      // already closing
    }
  }

  /**
   * Whether the next queued message may be posted to the worker: at most `window` messages,
   * and beyond the first at most one maximal message's worth of bytes, are in flight.
   */
  mayPost(window: number, bytes: number): boolean {
    if (this.unacked.length === 0) return true;
    return this.unacked.length < window && this.unackedBytes + bytes <= MAX_MESSAGE_BYTES;
  }

  /** The worker dispatched `count` more messages. */
  acknowledge(count: number): void {
    for (const event of this.unacked.splice(0, count)) {
      if (event.kind === "message") this.unackedBytes -= event.bytes;
    }
  }

  /** Puts messages the worker never dispatched back at the front of the queue. */
  requeue(): void {
    if (this.unacked.length === 0) return;
    this.inboxBytes += this.unackedBytes;
    this.inbox = [...this.unacked, ...this.inbox];
    this.unacked = [];
    this.unackedBytes = 0;
  }

  /** Queues a client event for the object; false when the inbox is over its limit. */
  enqueue(event: Inbound): boolean {
    this.inbox.push(event);
    if (event.kind !== "message") return true;
    this.inboxBytes += event.bytes;
    return this.inbox.length <= MAX_INBOX_MESSAGES && this.inboxBytes <= MAX_INBOX_BYTES;
  }

  /** What a fresh worker needs to rebuild this socket. */
  toWire(): WireHibernatedSocket {
    const closing = this.inbox.some((event) => event.kind !== "message");
    return {
      sockId: this.sockId,
      tags: [...this.tags],
      attachment: this.attachment,
      autoResponseAt: this.autoResponseAt,
      readyState: closing ? 2 : 1,
    };
  }
}

/** The sockets and socket settings of one instance. */
export class InstanceSockets {
  readonly key: string;
  target: InstanceTarget;
  readonly sockets = new Map<number, HostSocket>();
  /** Sockets with client events waiting to be posted (so delivery never scans every socket). */
  readonly waiting = new Set<HostSocket>();
  autoResponse: WireAutoResponse | null = null;
  eventTimeoutMs: number | null = null;
  nextSockId = 1;
  /** The worker the unacknowledged messages were posted to. */
  worker: Instance | null = null;
  /** Last socket event or socket operation (hibernation counts idleness from here). */
  lastActivity = Date.now();
  /** A wake-up is in progress. */
  waking = false;
  /** An outstanding hibernation probe. */
  probe: { seq: number; sentAt: number; activity: number; lastActive: number } | null = null;

  constructor(key: string, target: InstanceTarget) {
    this.key = key;
    this.target = target;
  }

  /** Registers a socket the object returned in a 101 response. */
  add(socket: HostSocket): void {
    this.sockets.set(socket.sockId, socket);
    this.nextSockId = Math.max(this.nextSockId, socket.sockId + 1);
  }

  /** Whether client events wait to be posted. */
  get hasInbox(): boolean {
    return this.waiting.size > 0;
  }

  /** Whether posted messages wait for their acknowledgement. */
  get hasUnacked(): boolean {
    for (const socket of this.sockets.values()) if (socket.unacked.length > 0) return true;
    return false;
  }

  /** The socket part of a fresh worker's `InstanceInit`. */
  init(): SocketInit {
    const sockets: WireHibernatedSocket[] = [];
    for (const socket of this.sockets.values()) {
      if (socket.hibernatable && !socket.detached) sockets.push(socket.toWire());
    }
    return {
      sockets,
      autoResponse: this.autoResponse,
      eventTimeoutMs: this.eventTimeoutMs,
      nextSockId: this.nextSockId,
    };
  }
}

/** The socket fields of `InstanceInit`. */
export type SocketInit = Pick<
  InstanceInit,
  "sockets" | "autoResponse" | "eventTimeoutMs" | "nextSockId"
>;

/** Every instance's sockets, by instance key. */
export class SocketRegistry implements SocketView {
  readonly #entries = new Map<string, InstanceSockets>();
  /** Tells whether an instance has a live worker (for the hibernated count). */
  readonly #isLive: (key: string) => boolean;

  constructor(isLive: (key: string) => boolean) {
    this.#isLive = isLive;
  }

  get(key: string): InstanceSockets | undefined {
    return this.#entries.get(key);
  }

  ensure(key: string, target: InstanceTarget): InstanceSockets {
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = new InstanceSockets(key, target);
      this.#entries.set(key, entry);
    }
    return entry;
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  entries(): IterableIterator<InstanceSockets> {
    return this.#entries.values();
  }

  /** The entries of an app's class (or of the whole app, or of every app). */
  matching(appId: string | null, className: string | null): InstanceSockets[] {
    return [...this.#entries.values()].filter((entry) =>
      (appId === null || entry.target.app.appId === appId) &&
      (className === null || entry.target.record.name === className)
    );
  }

  count(key: string): number {
    return this.#entries.get(key)?.sockets.size ?? 0;
  }

  hibernated(key: string): boolean {
    return this.count(key) > 0 && !this.#isLive(key);
  }

  holders(appId: string, className: string): InstanceTarget[] {
    return this.matching(appId, className)
      .filter((entry) => entry.sockets.size > 0)
      .map((entry) => entry.target);
  }

  totals(): { sockets: number; hibernated: number } {
    let sockets = 0;
    let hibernated = 0;
    for (const entry of this.#entries.values()) {
      sockets += entry.sockets.size;
      if (entry.sockets.size > 0 && !this.#isLive(entry.key)) hibernated++;
    }
    return { sockets, hibernated };
  }
}
