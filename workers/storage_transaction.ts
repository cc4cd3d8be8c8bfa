/**
 * The `txn` object handed to a `storage.transaction()` closure.
 *
 * On the SQLite backend every storage call made inside the closure already belongs to the
 * transaction (one connection, one open SAVEPOINT), so `txn` simply forwards to the storage.
 * What it adds is its life cycle: after `rollback()` or after the closure has finished, any
 * use throws, which catches a `txn` that escaped its closure.
 */

import type { ListOptions } from "./kv_range.ts";

/** Where a transaction stands; the storage moves it forward. */
export type TransactionState = "open" | "rolled-back" | "committed";

/** What the transaction forwards to (the storage itself) and how it undoes its writes. */
export interface TransactionTarget {
  get(keyOrKeys: unknown, options?: unknown): Promise<unknown>;
  put(keyOrEntries: unknown, value?: unknown, options?: unknown): Promise<void>;
  delete(keyOrKeys: unknown, options?: unknown): Promise<boolean | number>;
  list(options?: ListOptions): Promise<Map<string, unknown>>;
  getAlarm(options?: unknown): Promise<number | null>;
  setAlarm(scheduledTime: number | Date, options?: unknown): Promise<void>;
  deleteAlarm(options?: unknown): Promise<void>;
}

/** The control block shared between a transaction and the storage that opened it. */
export interface TransactionControl {
  state: TransactionState;
  /** Discards the transaction's writes so far (it stays open for the closure to finish). */
  undo(): void;
}

/** `txn` inside `storage.transaction(async (txn) => …)`. */
export class DurableObjectTransaction {
  readonly #target: TransactionTarget;
  readonly #control: TransactionControl;

  constructor(target: TransactionTarget, control: TransactionControl) {
    this.#target = target;
    this.#control = control;
  }

  /** Same as `storage.get()`. */
  get(keyOrKeys: unknown, options?: unknown): Promise<unknown> {
    this.#check("get");
    return this.#target.get(keyOrKeys, options);
  }

  /** Same as `storage.put()`. */
  put(keyOrEntries: unknown, value?: unknown, options?: unknown): Promise<void> {
    this.#check("put");
    return this.#target.put(keyOrEntries, value, options);
  }

  /** Same as `storage.delete()`. */
  delete(keyOrKeys: unknown, options?: unknown): Promise<boolean | number> {
    this.#check("delete");
    return this.#target.delete(keyOrKeys, options);
  }

  /** Same as `storage.list()`. */
  list(options?: ListOptions): Promise<Map<string, unknown>> {
    this.#check("list");
    return this.#target.list(options);
  }

  /** Same as `storage.getAlarm()`. */
  getAlarm(options?: unknown): Promise<number | null> {
    this.#check("getAlarm");
    return this.#target.getAlarm(options);
  }

  /** Same as `storage.setAlarm()`. */
  setAlarm(scheduledTime: number | Date, options?: unknown): Promise<void> {
    this.#check("setAlarm");
    return this.#target.setAlarm(scheduledTime, options);
  }

  /** Same as `storage.deleteAlarm()`. */
  deleteAlarm(options?: unknown): Promise<void> {
    this.#check("deleteAlarm");
    return this.#target.deleteAlarm(options);
  }

  /** Never allowed: `deleteAll()` cannot be part of a transaction. */
  deleteAll(): Promise<void> {
    throw new Error("Cannot call deleteAll() within a transaction");
  }

  /** Discards the transaction's writes; the closure's result is still returned. Idempotent. */
  rollback(): void {
    if (this.#control.state === "rolled-back") return;
    this.#check("rollback");
    this.#control.state = "rolled-back";
    this.#control.undo();
  }

  #check(op: string): void {
    switch (this.#control.state) {
      case "open":
        return;
      case "rolled-back":
        throw new Error(`Cannot ${op}() on rolled back transaction`);
      case "committed":
        throw new Error(
          `Cannot call ${op}() on transaction that has already committed: ` +
            "did you move `txn` outside of the closure?",
        );
    }
  }
}
