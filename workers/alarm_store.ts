/**
 * The alarm time as stored in `_cf_META`, including what happens to it while `alarm()` runs.
 *
 * Row `alarm` is the visible alarm (`getAlarm()`). When a run starts, its time moves to row
 * `alarm_running`, so `getAlarm()` is null inside the handler unless the handler sets a new
 * one. Both moves are ordinary writes, so they commit, roll back and coalesce with everything
 * else. When the run fails and the handler neither set a new alarm nor deleted it, the time
 * moves back so it stays visible until the retry. A leftover `alarm_running` row means the
 * process died mid-run: it is moved back at startup, and the alarm runs again (at least once).
 */

import type { InstanceDb } from "./instance_db.ts";

const ALARM = "alarm";
const RUNNING = "alarm_running";

const SQL = {
  get: "SELECT value FROM _cf_META WHERE key = ?",
  set: "INSERT OR REPLACE INTO _cf_META (key, value) VALUES (?, ?)",
  delete: "DELETE FROM _cf_META WHERE key = ?",
} as const;

/** Reads and writes the stored alarm; validation and host notification live in the storage. */
export class AlarmStore {
  readonly #db: InstanceDb;

  constructor(db: InstanceDb) {
    this.#db = db;
    const interrupted = this.#read(RUNNING);
    if (interrupted !== null) {
      this.#db.beginWrite();
      if (this.#read(ALARM) === null) this.#write(ALARM, interrupted);
      this.#remove(RUNNING);
    }
  }

  /** The visible alarm time (ms since the epoch), or null. */
  get(): number | null {
    return this.#read(ALARM);
  }

  /** Sets the visible alarm. */
  set(at: number): void {
    this.#db.beginWrite();
    this.#write(ALARM, at);
  }

  /** Deletes the visible alarm and cancels the retry of a running one; true if one was set. */
  delete(): boolean {
    this.#db.beginWrite();
    this.#remove(RUNNING);
    return this.#remove(ALARM);
  }

  /** Starts a run: the stored time moves out of sight. Returns it, or null when none is set. */
  beginRun(): number | null {
    const at = this.#read(ALARM);
    if (at === null) return null;
    this.#db.beginWrite();
    this.#remove(ALARM);
    this.#write(RUNNING, at);
    return at;
  }

  /** Ends a run; a failed run keeps `scheduled` unless the handler replaced or deleted it. */
  endRun(scheduled: number, succeeded: boolean): number | null {
    const current = this.#read(ALARM);
    const running = this.#read(RUNNING) !== null;
    if (!running) return current;
    this.#db.beginWrite();
    this.#remove(RUNNING);
    if (succeeded || current !== null) return current;
    this.#write(ALARM, scheduled);
    return scheduled;
  }

  #read(key: string): number | null {
    const row = this.#db.statement(SQL.get).get(key);
    return row === undefined ? null : Number(row.value);
  }

  #write(key: string, at: number): void {
    this.#db.guard(() => this.#db.statement(SQL.set).run(key, at));
  }

  #remove(key: string): boolean {
    return Number(this.#db.guard(() => this.#db.statement(SQL.delete).run(key)).changes) > 0;
  }
}
