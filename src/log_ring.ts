/**
 * What object code printed: `console.*` lines from instances, kept in memory per class.
 *
 * Each class keeps its last {@linkcode LOG_RING_SIZE} lines in a ring, so a chatty object
 * cannot grow the server's memory, and followers (`logs?follow=1`, `dohost logs -f`) get each
 * new line as it arrives. Nothing is written to disk: the server log (stderr) has the same
 * lines for whoever keeps it.
 */

import type { LogLevel } from "../workers/protocol.ts";

/** Lines kept per class. */
export const LOG_RING_SIZE = 1000;

/** One line of object output. */
export interface LogEntry {
  /** Increasing across the whole server: a follower resumes after the last one it saw. */
  seq: number;
  /** ISO 8601 time the host received it. */
  time: string;
  level: LogLevel;
  app: string;
  class: string;
  /** The instance name, or its 64-hex id for unique ids. */
  instance: string;
  message: string;
}

/** A follower's callback. */
export type LogListener = (entry: LogEntry) => void;

interface Ring {
  entries: LogEntry[];
  /** Index of the oldest entry once the ring is full. */
  start: number;
  listeners: Set<LogListener>;
}

/** The rings of every class. */
export class LogRing {
  readonly #rings = new Map<string, Ring>();
  readonly #size: number;
  readonly #closing = Promise.withResolvers<void>();
  #seq = 0;

  constructor(size = LOG_RING_SIZE) {
    this.#size = size;
  }

  /** Adds a line and hands it to the class's followers. */
  push(entry: Omit<LogEntry, "seq" | "time">): void {
    const ring = this.#ring(entry.app, entry.class);
    const full: LogEntry = { seq: ++this.#seq, time: new Date().toISOString(), ...entry };
    if (ring.entries.length < this.#size) ring.entries.push(full);
    else {
      ring.entries[ring.start] = full;
      ring.start = (ring.start + 1) % this.#size;
    }
    for (const listener of ring.listeners) listener(full);
  }

  /** The last `limit` lines of a class, oldest first. */
  recent(appId: string, className: string, limit = this.#size): LogEntry[] {
    const ring = this.#rings.get(key(appId, className));
    if (!ring) return [];
    const ordered = [...ring.entries.slice(ring.start), ...ring.entries.slice(0, ring.start)];
    return limit >= ordered.length ? ordered : ordered.slice(ordered.length - limit);
  }

  /** Calls `listener` for every new line of a class; returns the unsubscribe function. */
  follow(appId: string, className: string, listener: LogListener): () => void {
    const ring = this.#ring(appId, className);
    ring.listeners.add(listener);
    return () => ring.listeners.delete(listener);
  }

  /** Settles when the server shuts down: followers end their streams. */
  get closed(): Promise<void> {
    return this.#closing.promise;
  }

  /** Ends every follower (shutdown would otherwise wait for their open streams). */
  close(): void {
    this.#closing.resolve();
  }

  #ring(appId: string, className: string): Ring {
    const k = key(appId, className);
    let ring = this.#rings.get(k);
    if (!ring) {
      ring = { entries: [], start: 0, listeners: new Set() };
      this.#rings.set(k, ring);
    }
    return ring;
  }
}

function key(appId: string, className: string): string {
  return `${appId}/${className}`;
}
