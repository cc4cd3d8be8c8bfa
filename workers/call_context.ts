/**
 * How deep in a chain of object-to-object calls the running code is.
 *
 * An HTTP request or an alarm starts at depth 0; a call made while handling an event of depth
 * `d` reaches its target at depth `d + 1`. The depth follows the code through awaits and
 * timers (an `AsyncLocalStorage`), so each of several interleaved events keeps its own. The
 * host refuses calls past `MAX_CALL_DEPTH`, which turns an endless A → B → A loop into a
 * clear error instead of a hang.
 */

import { AsyncLocalStorage } from "node:async_hooks";

const depth = new AsyncLocalStorage<number>();

/** Runs `fn` (and everything it schedules) as part of an event at call depth `value`. */
export function withCallDepth<T>(value: number, fn: () => T): T {
  // Already at that depth (the common case: depth 0 outside any context): skip the context
  // switch, which costs a few µs per event.
  if ((depth.getStore() ?? 0) === value) return fn();
  return depth.run(value, fn);
}

/** The call depth of the event the current code belongs to (0 outside any event). */
export function currentCallDepth(): number {
  return depth.getStore() ?? 0;
}

/** `fn` bound to the current call context, for code that runs it later from a queue. */
export function bindCallContext<T extends (...args: never[]) => unknown>(fn: T): T {
  return AsyncLocalStorage.bind(fn);
}
