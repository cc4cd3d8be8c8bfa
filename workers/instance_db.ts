/**
 * One instance's SQLite database and its implicit transaction.
 *
 * Cloudflare coalesces every write made in one turn of the event loop into one atomic implicit
 * transaction and holds outgoing messages until it is durable (the output gate). Here the
 * first write of a turn opens `BEGIN`, and the transaction commits either on the next
 * macrotask or when something must leave the object: a socket send commits at once
 * ({@linkcode InstanceDb.commitSafely}); a response waits for a commit
 * ({@linkcode InstanceDb.flush}), which is made at once unless more events are already waiting
 * to start, whose writes then share it (a commit costs ~40 µs, a write ~2). `ctx.abort()`
 * calls {@linkcode InstanceDb.rollback} instead. Explicit transactions (`transaction()`,
 * `transactionSync()`) nest inside it as SAVEPOINTs.
 *
 * The handle is opened by the worker itself with ATTACH disabled; the SQL API installs an
 * authorizer on it (`sql.ts`). Internal statements run with the authorizer relaxed.
 *
 * Failures that are not the object's doing (a corrupt or locked file at open, a full disk, the
 * storage limit) are thrown as {@linkcode StorageFaultError}s with their code. A write that
 * fails that way is remembered, so the commit that finds the turn rolled back reports it.
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
// The module's own binding: object code replacing `globalThis.setTimeout` cannot stop commits.
import { setTimeout } from "node:timers";
import { storageFault, StorageFaultError } from "./storage_fault.ts";

/** Internal tables; user SQL cannot touch names starting with `_cf_`. */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS _cf_KV (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _cf_META (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
`;

/**
 * Opens the database in WAL mode with its schema. A file that cannot be opened (corrupt, locked
 * past `busy_timeout`, unreadable) throws a {@linkcode StorageFaultError}.
 */
function open(path: string, maxStorageBytes: number | null): DatabaseSync {
  let db: DatabaseSync | null = null;
  try {
    // Cloudflare's SQLite accepts "text" as a string literal (SELECT "abc" AS bar).
    db = new DatabaseSync(
      path,
      {
        enableForeignKeyConstraints: true,
        enableDoubleQuotedStringLiterals: true,
        limits: { attach: 0 },
      } as ConstructorParameters<typeof DatabaseSync>[1],
    );
    db.exec("PRAGMA busy_timeout=5000; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    if (maxStorageBytes) {
      const pageSize = Number(db.prepare("PRAGMA page_size").get()?.page_size ?? 4096);
      const pages = Math.max(1, Math.floor(maxStorageBytes / pageSize));
      db.exec(`PRAGMA max_page_count = ${pages}`);
    }
    db.exec(SCHEMA);
    return db;
  } catch (error) {
    db?.close(); // the instance cannot start: its handle must not linger
    throw storageFault(error, { limitBytes: null }) ?? error;
  }
}

/** Options for {@linkcode InstanceDb}. */
export interface InstanceDbOptions {
  /**
   * Called when a commit fails (disk full, corruption): the instance must be reset. The error
   * is a {@linkcode StorageFaultError} when the cause is known.
   */
  onFatal(error: unknown): void;
  /**
   * Largest database file in bytes (`--max-storage-bytes`), enforced by SQLite's
   * `max_page_count`: a write that would grow the file past it fails with SQLITE_FULL.
   */
  maxStorageBytes?: number | null;
  /**
   * Whether more events are waiting to start (the input gate's queue): a response then waits
   * for the commit of a later one, or of the turn, instead of committing alone.
   */
  eventsWaiting?: () => boolean;
}

/** A response held until the writes before it are committed. */
interface CommitWaiter {
  resolve(): void;
  reject(error: unknown): void;
}

/** The instance database: implicit write transaction, savepoints, cached statements. */
export class InstanceDb {
  readonly db: DatabaseSync;
  #implicitOpen = false;
  #commitScheduled = false;
  #savepoints = 0;
  #statements = new Map<string, StatementSync>();
  #onFatal: (error: unknown) => void;
  readonly #eventsWaiting: () => boolean;
  #waiters: CommitWaiter[] = [];
  readonly #maxStorageBytes: number | null;
  /** The storage fault that failed a write of the open transaction, if one did. */
  #fault: StorageFaultError | null = null;
  #closed = false;
  /** True while our own statements run: the user-SQL authorizer lets them through. */
  internal = false;

  constructor(path: string, options: InstanceDbOptions) {
    this.#onFatal = options.onFatal;
    this.#eventsWaiting = options.eventsWaiting ?? (() => false);
    this.#maxStorageBytes = options.maxStorageBytes ?? null;
    this.db = open(path, this.#maxStorageBytes);
  }

  /**
   * The storage fault behind a statement that failed inside the write transaction (remembered
   * for the commit), or null when `error` is not one. `message` replaces SQLite's.
   */
  fault(error: unknown, message?: string): StorageFaultError | null {
    const fault = storageFault(error, { limitBytes: this.#maxStorageBytes, message });
    if (fault && this.#implicitOpen) this.#fault = fault;
    return fault;
  }

  /** Runs a storage call; a storage fault is thrown as a {@linkcode StorageFaultError}. */
  guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      throw this.fault(error) ?? error;
    }
  }

  /** A cached prepared statement for internal use. */
  statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.runInternal(() => this.db.prepare(sql));
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** Runs internal SQL with the user authorizer relaxed. */
  runInternal<T>(fn: () => T): T {
    const previous = this.internal;
    this.internal = true;
    try {
      return fn();
    } finally {
      this.internal = previous;
    }
  }

  /** Opens the implicit transaction (if needed) before a write. */
  beginWrite(): void {
    if (this.#closed) throw new Error("Durable Object storage is no longer available");
    if (this.#implicitOpen) return;
    this.#control("BEGIN");
    this.#implicitOpen = true;
    this.#scheduleCommit();
  }

  #scheduleCommit(): void {
    if (this.#commitScheduled) return;
    this.#commitScheduled = true;
    setTimeout(() => {
      this.#commitScheduled = false;
      this.commitSafely();
    }, 0);
  }

  /** Whether a write transaction is open (there are unconfirmed writes). */
  get dirty(): boolean {
    return this.#implicitOpen;
  }

  /**
   * Resolves once the writes made so far are committed; rejects when that commit fails. While
   * more events wait to start, the commit is left to a later flush or to the turn's commit.
   */
  flush(): Promise<void> {
    if (!this.#implicitOpen || this.#savepoints > 0) return Promise.resolve();
    if (this.#eventsWaiting()) {
      this.#scheduleCommit();
      return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
    }
    try {
      this.#commitOrReset();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Commits now, whether or not events wait (the turn's timer, a socket send); a failure resets
   * the instance.
   */
  commitSafely(): void {
    try {
      this.#commitOrReset();
    } catch {
      // Reported through onFatal: the instance is being reset.
    }
  }

  /** Commits the implicit transaction (if one is open); a failure calls onFatal and is rethrown. */
  #commitOrReset(): void {
    if (!this.#implicitOpen || this.#savepoints > 0) return;
    try {
      this.#commit();
    } catch (error) {
      this.#onFatal(error);
      throw error;
    }
  }

  #commit(): void {
    try {
      this.#commitTransaction();
    } catch (error) {
      this.#settleWaiters(error);
      throw error;
    }
    this.#settleWaiters(null);
  }

  /** Releases the responses held for a commit (`error`: it failed or the writes were dropped). */
  #settleWaiters(error: unknown): void {
    const waiters = this.#waiters;
    if (waiters.length === 0) return;
    this.#waiters = [];
    for (const waiter of waiters) error === null ? waiter.resolve() : waiter.reject(error);
  }

  #commitTransaction(): void {
    this.#implicitOpen = false;
    const fault = this.#fault;
    this.#fault = null;
    if (!this.db.isTransaction) {
      // SQLite itself rolled the transaction back after a critical error (SQLITE_FULL when a
      // write hit the storage limit or the disk is full, an I/O error): the turn's writes are
      // gone.
      const detail = fault ? `: ${fault.message}` : "";
      throw new StorageFaultError(
        fault?.code ?? "STORAGE_UNAVAILABLE",
        `Writes were rolled back after a critical storage error${detail}`,
        { cause: fault },
      );
    }
    try {
      this.#control("COMMIT");
    } catch (error) {
      if (this.db.isTransaction) this.#control("ROLLBACK");
      throw storageFault(error, { limitBytes: null }) ?? error;
    }
  }

  /** Throws away every uncommitted write (ctx.abort, failed commit). */
  rollback(): void {
    if (this.db.isTransaction) this.#control("ROLLBACK");
    this.#implicitOpen = false;
    this.#fault = null;
    this.#savepoints = 0;
    this.#settleWaiters(new Error("Writes were rolled back before they were committed"));
  }

  /** Runs `fn` inside a SAVEPOINT: rolled back alone if it throws. */
  savepoint<T>(fn: () => T): T {
    this.beginWrite();
    const name = `_cf_sp${this.#savepoints++}`;
    this.#control(`SAVEPOINT ${name}`);
    try {
      const result = fn();
      this.#control(`RELEASE ${name}`);
      return result;
    } catch (error) {
      // After a critical error SQLite has rolled back the whole transaction, savepoint included.
      if (this.db.isTransaction) this.#control(`ROLLBACK TO ${name}; RELEASE ${name}`);
      throw this.fault(error) ?? error;
    } finally {
      this.#savepoints--;
    }
  }

  /** Opens a SAVEPOINT for an async transaction; the caller ends it with `release`/`undo`. */
  openSavepoint(): string {
    this.beginWrite();
    const name = `_cf_sp${this.#savepoints++}`;
    this.#control(`SAVEPOINT ${name}`);
    return name;
  }

  /** Ends an async transaction's savepoint, keeping (`commit`) or discarding its writes. */
  closeSavepoint(name: string, commit: boolean): void {
    this.#savepoints--;
    // After a critical error SQLite has rolled back the whole transaction, savepoint included.
    if (!this.db.isTransaction) return;
    this.#control(commit ? `RELEASE ${name}` : `ROLLBACK TO ${name}; RELEASE ${name}`);
    if (this.#savepoints === 0 && this.#implicitOpen) this.#scheduleCommit();
  }

  /** Transaction-control SQL: always internal, never subject to the user authorizer. */
  #control(sql: string): void {
    this.runInternal(() => this.db.exec(sql));
  }

  /** Commits what is pending and closes the handle. */
  close(): void {
    if (this.#closed) return;
    this.commitSafely();
    this.#closed = true;
    this.db.close();
  }

  /** Closes without committing (the instance is being reset). */
  discard(): void {
    if (this.#closed) return;
    this.rollback();
    this.#closed = true;
    this.db.close();
  }
}
