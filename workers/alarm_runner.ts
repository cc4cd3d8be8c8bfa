/**
 * Runs `alarm()` when the host's scheduler says the alarm is due, one run at a time.
 *
 * The host keeps the timers (so alarms fire for stopped objects and survive restarts), but the
 * object's own storage is the truth: a run first checks that the stored alarm is due (or is
 * the very time the host scheduled, for the operator's "run now"); otherwise the host timer
 * was stale and nothing runs. The stored time is hidden while the handler runs
 * (`beginAlarmRun`), so `getAlarm()` is null inside it unless the handler sets a new alarm.
 * After a failure the time stays visible until the retry, unless the handler replaced or
 * deleted it; after the last allowed retry the alarm is deleted. The result tells the host
 * what is stored now, and it leaves the worker only after the run's writes are committed.
 */

import { ALARM_MAX_RETRIES, type WireAlarmResult, type WireError } from "./protocol.ts";
import type { DurableObjectStorage } from "./storage.ts";

/** What the runner needs from the object runtime. */
export interface AlarmHost {
  deliver<T>(event: (instance: Record<string, unknown>) => Promise<T>): Promise<T>;
  readonly storage: DurableObjectStorage;
  toWireError(error: unknown): WireError;
}

/** The `alarm()` runs of one instance. */
export class AlarmRunner {
  readonly #host: AlarmHost;
  #queue: Promise<unknown> = Promise.resolve();
  /** The scheduled time of the run in progress, or null. */
  #running: number | null = null;

  constructor(host: AlarmHost) {
    this.#host = host;
  }

  /** Runs the alarm if it is due (after any run in progress). */
  run(retryCount: number, scheduledTime: number): Promise<WireAlarmResult> {
    const result = this.#queue.then(() => this.#run(retryCount, scheduledTime));
    this.#queue = result.catch(() => {});
    return result;
  }

  /**
   * `ctx.abort(…, { retryAlarm: false })` during a run, after the turn's writes were rolled
   * back: the interrupted alarm is dropped (one the handler set and committed is kept).
   */
  abandon(): void {
    const scheduled = this.#running;
    if (scheduled === null) return;
    this.#running = null;
    const storage = this.#host.storage;
    if (storage.endAlarmRun(scheduled, true) === scheduled) storage.deleteAlarm();
  }

  async #run(retryCount: number, hint: number): Promise<WireAlarmResult> {
    const storage = this.#host.storage;
    if (retryCount > ALARM_MAX_RETRIES) return await this.#drop(hint);
    // An object, not a `let`: the time is set inside the delivered callback.
    const run: { scheduled: number | null } = { scheduled: null };
    let failure: unknown = null;
    try {
      await this.#host.deliver(async (instance) => {
        const stored = await storage.getAlarm();
        if (stored === null || (stored > Date.now() && stored !== hint)) return;
        const handler = instance.alarm;
        if (typeof handler !== "function") {
          await storage.deleteAlarm();
          return;
        }
        run.scheduled = storage.beginAlarmRun();
        this.#running = run.scheduled;
        await handler.call(instance, {
          retryCount,
          isRetry: retryCount > 0,
          scheduledTime: run.scheduled,
        });
      });
    } catch (error) {
      failure = error;
    } finally {
      this.#running = null;
    }
    const error = failure === null ? null : this.#host.toWireError(failure);
    const scheduled = run.scheduled;
    let next: number | null;
    let retry: boolean;
    if (scheduled === null) {
      // Nothing began: a stale timer, or the constructor failed (the alarm stays for a retry).
      next = await storage.getAlarm();
      retry = error !== null && next !== null;
    } else {
      next = storage.endAlarmRun(scheduled, error === null);
      retry = error !== null && next === scheduled;
    }
    if (retry && retryCount >= ALARM_MAX_RETRIES) {
      await storage.deleteAlarm();
      next = null;
      retry = false;
    }
    await storage.sync();
    return { ran: scheduled !== null || error !== null, error, next, retry };
  }

  /**
   * The host gave up after the last attempt died with its instance (so this worker restored
   * the interrupted alarm at startup): the alarm is deleted and nothing runs.
   */
  async #drop(scheduled: number): Promise<WireAlarmResult> {
    const storage = this.#host.storage;
    if ((await storage.getAlarm()) === scheduled) await storage.deleteAlarm();
    await storage.sync();
    return { ran: false, error: null, next: await storage.getAlarm(), retry: false };
  }
}
