/**
 * The alarm scheduler: one pending alarm per object, kept on the host so it outlives workers.
 *
 * An object's `setAlarm()`/`deleteAlarm()` reach the host as `alarm-set` messages; the
 * schedule is written to the `alarms` table of the meta database and mirrored in memory, with
 * one timer for the earliest alarm. When an alarm is due, the instance is woken (started if it
 * is stopped or hibernated, with its name kept) and sent an `alarm` event; its answer says
 * what is stored afterwards. The object's storage stays the truth: the worker runs nothing
 * when the stored alarm is not due, so a stale timer here is harmless.
 *
 * Failures are retried like Cloudflare: after 2, 4, 8, 16, 32 and 64 s (`--alarm-retry-base-ms`
 * scales the ladder for tests), with up to 25 % jitter, at most {@linkcode ALARM_MAX_RETRIES}
 * times. A new `setAlarm()` in the failing handler replaces the retry, and `ctx.abort(…,
 * { retryAlarm: false })` drops it. Delivery is at least once: an alarm whose run was cut off
 * by a crash or shutdown runs again, and alarms that came due while the server was down run
 * soon after it starts. Only one run per object is in flight at a time.
 */

import type { DatabaseSync } from "node:sqlite";
import { ALARM_MAX_RETRIES, type WireAlarmResult, type WireError } from "../workers/protocol.ts";
import type { AppStore } from "./apps.ts";
import {
  InstanceError,
  instanceKey,
  type InstanceManager,
  type InstanceTarget,
} from "./instances.ts";
import type { Logger } from "./log.ts";
import type { Registry } from "./registry.ts";

/** Longest delay `setTimeout` accepts. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Alarm runs in flight at once; the rest wait for a free slot. */
const MAX_CONCURRENT_RUNS = 32;
/** How long an alarm of a class that is not READY (a failed deploy) waits before it retries. */
const NOT_READY_DELAY_MS = 60_000;
/** Failures that are not the object's fault: retried without using up a retry. */
const INFRASTRUCTURE = new Set(["WORKER_GONE", "SHUTTING_DOWN"]);

/** One scheduled alarm. */
interface AlarmEntry {
  appId: string;
  className: string;
  idHex: string;
  name: string | null;
  /** The alarm time the object set (what its `getAlarm()` shows). */
  scheduled: number;
  /** When to deliver next: the alarm time, or the time of the pending retry. */
  at: number;
  /** The `retryCount` of the next delivery. */
  retryCount: number;
}

/** What one run did, as the operator endpoint reports it. */
export interface AlarmRunOutcome {
  /** `ok`, or `error` when the handler (or its instance) failed. */
  outcome: "ok" | "error";
  error: { name: string; message: string } | null;
  /** The `retryCount` the handler was called with. */
  retryCount: number;
  /** When the alarm runs next (a retry or a newly set alarm), or null. */
  nextAt: number | null;
}

/** Options for {@linkcode AlarmScheduler}. */
export interface AlarmSchedulerOptions {
  db: DatabaseSync;
  apps: AppStore;
  registry: Registry;
  instances: InstanceManager;
  logger: Logger;
  /** The first retry delay (Cloudflare: 2000 ms); each later retry doubles it. */
  retryBaseMs: number;
}

/** Keeps every pending alarm and delivers it when due. */
export class AlarmScheduler {
  readonly #options: AlarmSchedulerOptions;
  readonly #entries = new Map<string, AlarmEntry>();
  /** Runs in flight, by instance key. */
  readonly #running = new Map<string, Promise<AlarmRunOutcome | null>>();
  /** Keys whose alarm was set or deleted while their run was in flight. */
  readonly #changed = new Set<string>();
  /** Keys whose running alarm was aborted with `retryAlarm: false`. */
  readonly #noRetry = new Set<string>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #closed = false;

  constructor(options: AlarmSchedulerOptions) {
    this.#options = options;
    for (const row of options.db.prepare("SELECT * FROM alarms").all()) {
      const entry: AlarmEntry = {
        appId: String(row.app_id),
        className: String(row.class),
        idHex: String(row.id_hex),
        name: row.name === null ? null : String(row.name),
        scheduled: Number(row.scheduled ?? row.at),
        at: Number(row.at),
        retryCount: Number(row.retry_count),
      };
      this.#entries.set(entryKey(entry), entry);
    }
    this.#arm();
  }

  /** The instance set its alarm to `at`, or deleted it (null). */
  alarmSet(target: InstanceTarget, at: number | null): void {
    const key = instanceKey(target);
    if (this.#running.has(key)) this.#changed.add(key);
    if (at === null) {
      this.#delete(key);
      return;
    }
    const { app, record, idHex, name } = target;
    const entry = { appId: app.appId, className: record.name, idHex, name };
    this.#save({ ...entry, scheduled: at, at, retryCount: 0 });
    this.#armAt(at);
  }

  /** The instance reset itself; with `retryAlarm` false an alarm it was running is dropped. */
  aborted(target: InstanceTarget, retryAlarm: boolean): void {
    const key = instanceKey(target);
    if (!retryAlarm && this.#running.has(key)) this.#noRetry.add(key);
  }

  /**
   * Runs the instance's pending alarm now (or waits for the run in flight) and reports what
   * happened; null when no alarm is set.
   */
  async runNow(appId: string, className: string, idHex: string): Promise<AlarmRunOutcome | null> {
    const key = `${appId}/${className}/${idHex}`;
    const running = this.#running.get(key);
    if (running) return await running;
    if (!this.#entries.has(key)) return null;
    return await this.#start(key, true);
  }

  /** Stops the timers; runs in flight are left alone (they run again after a restart). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  /** Sets the timer for the earliest alarm that is not running. */
  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    let earliest = Infinity;
    for (const [key, entry] of this.#entries) {
      if (!this.#running.has(key) && entry.at < earliest) earliest = entry.at;
    }
    this.#armAt(earliest);
  }

  #armAt(at: number): void {
    if (this.#closed || at === Infinity || at >= this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    const delay = Math.min(Math.max(0, at - Date.now()), MAX_TIMER_MS);
    this.#timer = setTimeout(() => this.#fire(), delay);
  }

  /** Starts every due alarm (up to the concurrency limit), then re-arms. */
  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = Date.now();
    for (const [key, entry] of this.#entries) {
      if (this.#running.size >= MAX_CONCURRENT_RUNS) break;
      if (entry.at <= now && !this.#running.has(key)) this.#start(key, false);
    }
    if (this.#running.size < MAX_CONCURRENT_RUNS) this.#arm();
  }

  #start(key: string, now: boolean): Promise<AlarmRunOutcome | null> {
    const run = this.#run(key, now).finally(() => {
      this.#running.delete(key);
      this.#changed.delete(key);
      this.#noRetry.delete(key);
      this.#arm();
    });
    this.#running.set(key, run);
    return run;
  }

  async #run(key: string, now: boolean): Promise<AlarmRunOutcome | null> {
    const entry = this.#entries.get(key);
    if (!entry) return null;
    const target = this.#target(entry);
    if (!target) return null;
    this.#changed.delete(key);
    let answer: WireAlarmResult | WireError;
    try {
      const reply = await this.#options.instances.request(target, {
        type: "alarm",
        retryCount: entry.retryCount,
        scheduledTime: entry.scheduled,
      });
      if (reply.type !== "alarm-result") throw new Error(`Unexpected answer "${reply.type}"`);
      answer = reply.result;
    } catch (error) {
      answer = error instanceof InstanceError
        ? error.wire
        : { name: "Error", code: "INTERNAL", message: String(error) };
    }
    if (this.#closed) return null;
    if ("code" in answer) return this.#lost(key, entry, answer);
    if (!answer.ran) {
      // A stale timer: the object told us what is really stored. Run that at once if asked.
      this.#settle(key, entry, answer.next);
      if (now && answer.next !== null && this.#entries.has(key)) return this.#run(key, false);
      return null;
    }
    if (answer.error) this.#logFailure(entry, answer.error);
    if (answer.retry) this.#retry(key, entry, entry.retryCount + 1);
    else this.#settle(key, entry, answer.next);
    return {
      outcome: answer.error ? "error" : "ok",
      error: answer.error && { name: answer.error.name, message: answer.error.message },
      retryCount: entry.retryCount,
      nextAt: this.#entries.get(key)?.at ?? null,
    };
  }

  /** The run got no answer: the instance reset, crashed or was stopped. */
  #lost(key: string, entry: AlarmEntry, error: WireError): AlarmRunOutcome {
    this.#logFailure(entry, error);
    const outcome = (nextAt: number | null): AlarmRunOutcome => ({
      outcome: "error",
      error: { name: error.name, message: error.message },
      retryCount: entry.retryCount,
      nextAt,
    });
    // A new setAlarm()/deleteAlarm() during the run already replaced the entry.
    if (this.#changed.has(key)) return outcome(this.#entries.get(key)?.at ?? null);
    if (this.#noRetry.has(key)) {
      this.#delete(key);
      return outcome(null);
    }
    if (entry.retryCount > ALARM_MAX_RETRIES) this.#delete(key);
    else if (INFRASTRUCTURE.has(error.code)) this.#retry(key, entry, entry.retryCount);
    else this.#retry(key, entry, entry.retryCount + 1);
    return outcome(this.#entries.get(key)?.at ?? null);
  }

  /** After a run: the alarm stored now is `at` (null: none), unless it changed meanwhile. */
  #settle(key: string, entry: AlarmEntry, at: number | null): void {
    if (this.#changed.has(key)) return;
    if (at === null) this.#delete(key);
    else this.#save({ ...entry, scheduled: at, at, retryCount: 0 });
  }

  /**
   * Schedules delivery `retryCount` of the same alarm: retry `n` waits base × 2^(n−1), plus up
   * to 25 % jitter (an infrastructure failure retries at the same count). Past the last retry
   * the delivery only makes the object delete the alarm (its last attempt died with the
   * instance, which restores an interrupted alarm when it starts again).
   */
  #retry(key: string, entry: AlarmEntry, retryCount: number): void {
    if (this.#changed.has(key)) return;
    const exponent = retryCount > ALARM_MAX_RETRIES ? 0 : Math.max(0, retryCount - 1);
    const delay = this.#options.retryBaseMs * 2 ** exponent;
    const at = Date.now() + Math.round(delay * (1 + Math.random() * 0.25));
    this.#save({ ...entry, at, retryCount });
  }

  /** The instance an entry wakes; null (and the entry dropped) when its class is gone. */
  #target(entry: AlarmEntry): InstanceTarget | null {
    const { apps, registry } = this.#options;
    const app = apps.get(entry.appId);
    const record = app && registry.ready(entry.appId, entry.className);
    if (app && record) return { app, record, idHex: entry.idHex, name: entry.name };
    const key = entryKey(entry);
    if (app && registry.get(entry.appId, entry.className)) {
      this.#save({ ...entry, at: Date.now() + NOT_READY_DELAY_MS });
    } else {
      this.#delete(key);
    }
    return null;
  }

  #save(entry: AlarmEntry): void {
    this.#entries.set(entryKey(entry), entry);
    try {
      this.#options.db.prepare(
        `INSERT INTO alarms (app_id, class, id_hex, name, scheduled, at, retry_count)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (app_id, class, id_hex) DO UPDATE SET name = excluded.name,
           scheduled = excluded.scheduled, at = excluded.at, retry_count = excluded.retry_count`,
      ).run(
        entry.appId,
        entry.className,
        entry.idHex,
        entry.name,
        entry.scheduled,
        entry.at,
        entry.retryCount,
      );
    } catch (error) {
      // The app was deleted meanwhile (foreign key): the alarm goes with it.
      this.#entries.delete(entryKey(entry));
      this.#options.logger.log("warn", `Alarm not saved: ${String(error)}`, {
        app: entry.appId,
        class: entry.className,
      });
    }
  }

  #delete(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#options.db.prepare("DELETE FROM alarms WHERE app_id = ? AND class = ? AND id_hex = ?")
      .run(entry.appId, entry.className, entry.idHex);
  }

  #logFailure(entry: AlarmEntry, error: WireError): void {
    this.#options.logger.log("warn", `Alarm handler failed: ${error.name}: ${error.message}`, {
      app: entry.appId,
      class: entry.className,
      instance: entry.name ?? entry.idHex,
      retryCount: entry.retryCount,
      code: error.code,
    });
  }
}

function entryKey(entry: AlarmEntry): string {
  return `${entry.appId}/${entry.className}/${entry.idHex}`;
}
