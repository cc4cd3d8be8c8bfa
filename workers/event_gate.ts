/**
 * The input gate of one object, as far as it needs more than synchronous storage.
 *
 * Storage calls are synchronous SQLite here and return settled promises, so the continuation
 * of an `await get()` runs as a microtask. Cloudflare's input gate then holds as long as every
 * event *starts* in its own macrotask: the previous event's microtasks (its `await get()` →
 * `put()` chain) always finish before the next event begins. The worker's message port can
 * hand over several messages in one task, so events are queued and started one per
 * `setImmediate` turn (about 4 µs). `blockConcurrencyWhile` pauses the queue until its callback
 * settles. Events already running are never paused: requests still interleave at timer and
 * fetch awaits.
 */

import { setImmediate } from "node:timers";
import { currentCallDepth, withCallDepth } from "./call_context.ts";

/** Why a `blockConcurrencyWhile` call reset the object. */
export class ObjectResetError extends Error {
  override name = "Error";
  readonly overloaded: boolean;
  constructor(message: string, options: { overloaded?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.overloaded = options.overloaded ?? false;
  }
}

/** Maximum nesting of `blockConcurrencyWhile` calls (workerd's limit). */
const MAX_DEPTH = 64;
/** How long a `blockConcurrencyWhile` callback may take before the object is reset. */
export const BLOCK_TIMEOUT_MS = 30_000;

/** Gate options: what to do when a blocking callback fails or hangs. */
export interface EventGateOptions {
  onReset(error: ObjectResetError): void;
  /** How long a blocking callback may run; {@linkcode BLOCK_TIMEOUT_MS} by default. */
  timeoutMs?: number;
}

/** Queues events while `blockConcurrencyWhile` callbacks run. */
export class EventGate {
  #depth = 0;
  #queue: (() => void)[] = [];
  #scheduled = false;
  #onReset: (error: ObjectResetError) => void;
  #timeoutMs: number;

  constructor(options: EventGateOptions) {
    this.#onReset = options.onReset;
    this.#timeoutMs = options.timeoutMs ?? BLOCK_TIMEOUT_MS;
  }

  /** Whether events are queued and free to start in the coming turns. */
  get waiting(): boolean {
    return this.#depth === 0 && this.#queue.length > 0;
  }

  /** Whether events are currently held back. */
  get blocked(): boolean {
    return this.#depth > 0;
  }

  /**
   * Starts `event` in its own turn, after earlier events and blocking callbacks. The event
   * keeps the async context it was queued in (its call depth).
   */
  run<T>(event: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      // Only the call depth is carried (cheaper than binding the whole async context).
      const depth = currentCallDepth();
      this.#queue.push(() => {
        withCallDepth(depth, () => event().then(resolve, reject));
      });
      this.#schedule();
    });
  }

  /**
   * Holds back new events while `callback` runs, like {@linkcode EventGate.blockWhile}, but a
   * throw is only rethrown: `storage.transaction()` rolls back without resetting the object.
   * Hanging past the timeout still resets it.
   */
  async hold<T>(callback: () => Promise<T>): Promise<T> {
    const outcome = await this.blockWhile(() =>
      callback().then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      )
    );
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /** `ctx.blockConcurrencyWhile(cb)`: holds back new events until `cb` settles. */
  async blockWhile<T>(callback: () => T | Promise<T>): Promise<T> {
    if (this.#depth >= MAX_DEPTH) {
      throw new Error("blockConcurrencyWhile() calls are nested too deeply.");
    }
    this.#depth++;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new ObjectResetError(
                "A call to blockConcurrencyWhile() in a Durable Object waited for too long. " +
                  "The call was canceled and the Durable Object was reset.",
                { overloaded: true },
              ),
            ),
          this.#timeoutMs,
        );
      });
      return await Promise.race([Promise.resolve().then(callback), timeout]);
    } catch (error) {
      const reset = error instanceof ObjectResetError
        ? error
        : new ObjectResetError(error instanceof Error ? error.message : String(error), {
          cause: error,
        });
      this.#onReset(reset);
      throw reset;
    } finally {
      clearTimeout(timer);
      this.#depth--;
      if (this.#depth === 0) this.#schedule();
    }
  }

  #schedule(): void {
    if (this.#scheduled || this.#depth > 0 || this.#queue.length === 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (this.#depth > 0) return;
      this.#queue.shift()?.();
      this.#schedule();
    });
  }
}
