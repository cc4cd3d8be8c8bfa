/**
 * `ctx.storage`: the Durable Object storage API over the instance's own SQLite database.
 *
 * Everything runs synchronously on the object's thread: a write is applied inside `put()`
 * (in the implicit transaction that commits at the next macrotask or on flush) and the
 * returned promise is already resolved, so reads always see earlier writes, awaited or not,
 * and nothing can interleave between a read and its continuation. Argument errors (bad
 * options, size limits, uncloneable values) throw synchronously, like workerd's
 * serialization errors, and nothing is written when they do.
 *
 * Explicit transactions are SAVEPOINTs on the same connection, so direct `ctx.storage` and
 * `sql.exec` calls inside a `transaction()` closure belong to it. Whenever a rollback may have
 * changed the stored alarm, the host is told the alarm that is set now.
 */

import { AlarmStore } from "./alarm_store.ts";
import type { InstanceDb } from "./instance_db.ts";
import { type ListOptions, parseListOptions } from "./kv_range.ts";
import { KvStore } from "./kv_store.ts";
import { dropUserSchema } from "./schema_wipe.ts";
import {
  DurableObjectTransaction,
  type TransactionControl,
  type TransactionTarget,
} from "./storage_transaction.ts";
import { SyncKvStorage } from "./sync_kv.ts";

/** What the storage needs from the object runtime. */
export interface StorageHooks {
  /** Called after setAlarm/deleteAlarm/deleteAll (or a rollback) changed the alarm. */
  onAlarmChanged(at: number | null): void;
  /** Whether the user class has an alarm() method (setAlarm throws TypeError otherwise). */
  hasAlarmHandler(): boolean;
  /** Runs fn with other events held back (used by transaction(), like workerd). */
  blockConcurrencyWhile<T>(fn: () => Promise<T>): Promise<T>;
}

/** What `storage.sql` is: the SQL API from `sql.ts`, built on the same database. */
export interface SqlHandle {
  readonly databaseSize: number;
}

/** Options for {@linkcode DurableObjectStorage}. */
export interface StorageOptions {
  maxKeyBytes: number;
  maxValueBytes: number;
  hooks: StorageHooks;
  sql?: SqlHandle;
}

/** `ctx.storage` of one instance. */
export class DurableObjectStorage implements TransactionTarget {
  readonly #db: InstanceDb;
  readonly #hooks: StorageHooks;
  readonly #kv: KvStore;
  readonly #alarms: AlarmStore;
  readonly #syncKv: SyncKvStorage;
  readonly #sql: SqlHandle | undefined;
  /** Depth of open `transaction()` closures (they are serialized by blockConcurrencyWhile). */
  #transactions = 0;
  /** The alarm the host was last told about. */
  #reportedAlarm: number | null;

  constructor(db: InstanceDb, options: StorageOptions) {
    this.#db = db;
    this.#hooks = options.hooks;
    this.#kv = new KvStore(db, options);
    this.#alarms = new AlarmStore(db);
    this.#syncKv = new SyncKvStorage(this.#kv);
    this.#sql = options.sql;
    this.#reportedAlarm = this.#alarms.get();
  }

  /** The synchronous KV API (`ctx.storage.kv`). */
  get kv(): SyncKvStorage {
    return this.#syncKv;
  }

  /** The SQL API (`ctx.storage.sql`). */
  get sql(): SqlHandle {
    if (this.#sql === undefined) {
      throw new Error("SQL is not enabled for this Durable Object class.");
    }
    return this.#sql;
  }

  /** One value (undefined when missing), or a key-sorted Map of the keys that exist. */
  get(key: string, options?: unknown): Promise<unknown>;
  get(keys: readonly string[], options?: unknown): Promise<Map<string, unknown>>;
  get(keyOrKeys: unknown, options?: unknown): Promise<unknown>;
  get(keyOrKeys: unknown, _options?: unknown): Promise<unknown> {
    if (Array.isArray(keyOrKeys)) {
      return Promise.resolve(this.#kv.getMany(keyOrKeys.map((key) => this.#kv.key(key))));
    }
    return Promise.resolve(this.#kv.get(this.#kv.key(keyOrKeys)));
  }

  /** Stores one value, or every own property of an object (undefined values are skipped). */
  put(key: string, value: unknown, options?: unknown): Promise<void>;
  put(entries: Record<string, unknown>, options?: unknown): Promise<void>;
  put(keyOrEntries: unknown, value?: unknown, options?: unknown): Promise<void>;
  put(keyOrEntries: unknown, value?: unknown, _options?: unknown): Promise<void> {
    if (typeof keyOrEntries === "object" && keyOrEntries !== null) {
      const rows: [string, Uint8Array][] = [];
      for (const [key, item] of Object.entries(keyOrEntries)) {
        if (item !== undefined) rows.push([this.#kv.key(key), this.#kv.encode(item)]);
      }
      this.#kv.putMany(rows);
    } else {
      const key = this.#kv.key(keyOrEntries);
      if (value === undefined) throw new TypeError("put() called with undefined value.");
      this.#kv.put(key, this.#kv.encode(value));
    }
    return Promise.resolve();
  }

  /** Deletes one key (resolves whether it existed) or several (resolves how many existed). */
  delete(key: string, options?: unknown): Promise<boolean>;
  delete(keys: readonly string[], options?: unknown): Promise<number>;
  delete(keyOrKeys: unknown, options?: unknown): Promise<boolean | number>;
  delete(keyOrKeys: unknown, _options?: unknown): Promise<boolean | number> {
    if (Array.isArray(keyOrKeys)) {
      return Promise.resolve(this.#kv.deleteMany(keyOrKeys.map((key) => this.#kv.key(key))));
    }
    return Promise.resolve(this.#kv.delete(this.#kv.key(keyOrKeys)));
  }

  /** Key-ordered entries; see `kv_range.ts` for how the options combine. */
  list(options?: ListOptions): Promise<Map<string, unknown>> {
    return Promise.resolve(this.#kv.list(parseListOptions(options)));
  }

  /** Empties the whole database: KV, user SQL tables and the alarm. */
  deleteAll(_options?: unknown): Promise<void> {
    if (this.#transactions > 0) throw new Error("Cannot call deleteAll() within a transaction");
    const hadAlarm = this.#db.savepoint(() => {
      dropUserSchema(this.#db);
      this.#kv.clear();
      return this.#alarms.delete();
    });
    if (hadAlarm) this.#reportAlarm(null);
    return Promise.resolve();
  }

  /** Runs `closure` as one transaction, with other events held back until it settles. */
  transaction<T>(
    closure: (txn: DurableObjectTransaction) => T | Promise<T>,
    _options?: unknown,
  ): Promise<T> {
    return this.#hooks.blockConcurrencyWhile(() => this.#runTransaction(closure));
  }

  async #runTransaction<T>(closure: (txn: DurableObjectTransaction) => T | Promise<T>): Promise<T> {
    const savepoint = this.#db.openSavepoint();
    const control: TransactionControl = {
      state: "open",
      undo: () => {
        this.#db.runInternal(() => this.#db.db.exec(`ROLLBACK TO ${savepoint}`));
        this.#syncAlarm();
      },
    };
    let outcome: { ok: true; value: T } | { ok: false; error: unknown };
    this.#transactions++;
    try {
      outcome = { ok: true, value: await closure(new DurableObjectTransaction(this, control)) };
    } catch (error) {
      outcome = { ok: false, error };
    } finally {
      this.#transactions--;
    }
    const commit = outcome.ok && control.state === "open";
    control.state = commit ? "committed" : "rolled-back";
    this.#db.closeSavepoint(savepoint, commit);
    if (!commit) this.#syncAlarm();
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /** Runs `callback` synchronously in a nested transaction; a throw undoes only this level. */
  transactionSync<T>(callback: () => T): T {
    try {
      return this.#db.savepoint(callback);
    } catch (error) {
      this.#syncAlarm();
      throw error;
    }
  }

  /** Resolves once every earlier write is committed. */
  sync(): Promise<void> {
    return this.#db.flush();
  }

  /** The alarm time in ms since the epoch, or null. */
  getAlarm(_options?: unknown): Promise<number | null> {
    return Promise.resolve(this.#alarms.get());
  }

  /** Sets (replaces) the alarm; a time in the past means "as soon as possible". */
  setAlarm(scheduledTime: number | Date, _options?: unknown): Promise<void> {
    const time = scheduledTime instanceof Date ? scheduledTime.getTime() : Number(scheduledTime);
    if (!(time > 0)) throw new TypeError("setAlarm() cannot be called with an alarm time <= 0");
    if (!this.#hooks.hasAlarmHandler()) {
      throw new TypeError(
        "Your Durable Object class must have an alarm() handler in order to call setAlarm()",
      );
    }
    const at = Math.max(Math.floor(time), Date.now());
    this.#alarms.set(at);
    this.#reportAlarm(at);
    return Promise.resolve();
  }

  /** Deletes the alarm (a no-op when none is set); inside `alarm()` it also stops the retry. */
  deleteAlarm(_options?: unknown): Promise<void> {
    if (this.#alarms.delete()) this.#reportAlarm(null);
    return Promise.resolve();
  }

  /**
   * For the alarm runner, before calling `alarm()`: returns the stored alarm time (null: no
   * alarm is due, skip the run) and hides it, so `getAlarm()` is null during the handler
   * unless the handler sets a new alarm. The host is not notified: it started the run.
   */
  beginAlarmRun(): number | null {
    const scheduled = this.#alarms.beginRun();
    this.#reportedAlarm = this.#alarms.get();
    return scheduled;
  }

  /**
   * For the alarm runner, after `alarm()` settled: returns the alarm now set. After a failure
   * that is `scheduled` again (visible between retries) unless the handler set or deleted the
   * alarm; the runner schedules the retry (or, when it gives up, calls `deleteAlarm()`). The
   * host is not notified: the runner decides what to tell it.
   */
  endAlarmRun(scheduled: number, succeeded: boolean): number | null {
    const now = this.#alarms.endRun(scheduled, succeeded);
    this.#reportedAlarm = now;
    return now;
  }

  /** Point-in-time recovery is not available here. */
  getCurrentBookmark(): Promise<string> {
    return Promise.reject(notSupported("getCurrentBookmark"));
  }

  /** Point-in-time recovery is not available here. */
  getBookmarkForTime(_timestamp: number | Date): Promise<string> {
    return Promise.reject(notSupported("getBookmarkForTime"));
  }

  /** Point-in-time recovery is not available here. */
  onNextSessionRestoreBookmark(_bookmark: string): Promise<string> {
    return Promise.reject(notSupported("onNextSessionRestoreBookmark"));
  }

  #reportAlarm(at: number | null): void {
    this.#reportedAlarm = at;
    this.#hooks.onAlarmChanged(at);
  }

  /** After a rollback: tells the host if the stored alarm is no longer what it was told. */
  #syncAlarm(): void {
    const at = this.#alarms.get();
    if (at !== this.#reportedAlarm) this.#reportAlarm(at);
  }
}

function notSupported(method: string): Error {
  return new Error(`${method}() is not supported by dohost`);
}
