/**
 * Counts the object's pending `setTimeout`/`setInterval` timers.
 *
 * On Cloudflare a pending timer keeps an object in memory: it must not hibernate before the
 * callback has run (an interval holds it until cleared). The worker bootstrap wraps the
 * global timer functions once, before user code loads, so the hibernation check can ask how
 * many are still pending. Timers the runtime itself creates through the same globals (the
 * storage commit tick) are short-lived and counted too, which only delays hibernation by a
 * turn.
 */

/** A timer id as the global functions return it (a number in Deno). */
type TimerId = unknown;
type Schedule = (callback: () => void, delay?: number) => TimerId;
type Cancel = (id?: TimerId) => void;

const pending = new Set<TimerId>();

/** The number of timers scheduled and not yet fired or cleared. */
export function pendingTimers(): number {
  return pending.size;
}

/** Replaces the global timer functions of `scope` with counting wrappers. */
export function trackTimers(scope: typeof globalThis): void {
  const setTimeoutNative = scope.setTimeout.bind(scope) as unknown as Schedule;
  const setIntervalNative = scope.setInterval.bind(scope) as unknown as Schedule;
  const clearTimeoutNative = scope.clearTimeout.bind(scope) as unknown as Cancel;
  const clearIntervalNative = scope.clearInterval.bind(scope) as unknown as Cancel;
  const wrappedSetTimeout = (callback: unknown, delay?: number, ...args: unknown[]): TimerId => {
    if (typeof callback !== "function") return setTimeoutNative(callback as () => void, delay);
    const id = setTimeoutNative(() => {
      pending.delete(id);
      callback(...args);
    }, delay);
    pending.add(id);
    return id;
  };
  const wrappedSetInterval = (callback: unknown, delay?: number, ...args: unknown[]): TimerId => {
    if (typeof callback !== "function") return setIntervalNative(callback as () => void, delay);
    const id = setIntervalNative(() => callback(...args), delay);
    pending.add(id);
    return id;
  };
  const wrappedClearTimeout = (id?: TimerId): void => {
    pending.delete(id);
    clearTimeoutNative(id);
  };
  const wrappedClearInterval = (id?: TimerId): void => {
    pending.delete(id);
    clearIntervalNative(id);
  };
  Reflect.set(scope, "setTimeout", wrappedSetTimeout);
  Reflect.set(scope, "setInterval", wrappedSetInterval);
  Reflect.set(scope, "clearTimeout", wrappedClearTimeout);
  Reflect.set(scope, "clearInterval", wrappedClearInterval);
}
