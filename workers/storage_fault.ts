/**
 * Storage faults: SQLite failures that are not the object's doing, each with the code the host
 * answers with (`x-dohost-error`).
 *
 * A full disk and the `--max-storage-bytes` limit (SQLite's `max_page_count`) both fail with
 * SQLITE_FULL. They are told apart by when it happens. In WAL mode a write transaction keeps
 * its pages in memory until it commits, so the disk is written at the commit (and the
 * checkpoint that may follow it), while `max_page_count` is checked when a statement adds a
 * page. A SQLITE_FULL raised by a statement inside the transaction is therefore the limit;
 * one raised by a commit, or by the autocommit statements that open the database, is the disk.
 * (A transaction that outgrows SQLite's page cache, about 2 MB, spills pages to the WAL early:
 * on a full disk that one is reported as the limit.) node:sqlite leaves the result code off
 * errors of `exec()`, so SQLite's fixed message for each code stands in for it there.
 */

import type { StorageFaultCode } from "./protocol.ts";
import { sqliteCode } from "./sql_errors.ts";

const SQLITE_FULL = 13;

/** Primary result codes (and SQLite's message for each) that are storage faults. */
const FAULTS: [code: number, message: string, fault: StorageFaultCode][] = [
  [SQLITE_FULL, "database or disk is full", "STORAGE_FULL"],
  [11, "database disk image is malformed", "STORAGE_CORRUPTED"],
  [26, "file is not a database", "STORAGE_CORRUPTED"],
  [5, "database is locked", "STORAGE_UNAVAILABLE"],
  [6, "database table is locked", "STORAGE_UNAVAILABLE"],
  [8, "attempt to write a readonly database", "STORAGE_UNAVAILABLE"],
  [10, "disk I/O error", "STORAGE_UNAVAILABLE"],
  [14, "unable to open database file", "STORAGE_UNAVAILABLE"],
  [15, "locking protocol", "STORAGE_UNAVAILABLE"],
];

/** A storage call failed for a reason outside the object's code. Its `name` stays `Error`. */
export class StorageFaultError extends Error {
  readonly code: StorageFaultCode;
  constructor(code: StorageFaultCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.code = code;
  }
}

/** Options for {@linkcode storageFault}. */
export interface StorageFaultOptions {
  /**
   * `--max-storage-bytes` when `error` came from a statement inside the write transaction
   * (a SQLITE_FULL there is the limit); null for commits and the database's opening.
   */
  limitBytes: number | null;
  /** Replaces SQLite's message (the SQL API passes its formatted one). */
  message?: string;
}

/** The storage fault behind `error`, or null when it is not one. */
export function storageFault(
  error: unknown,
  options: StorageFaultOptions,
): StorageFaultError | null {
  if (error instanceof StorageFaultError) return error;
  if (!(error instanceof Error)) return null;
  const code = sqliteCode(error);
  const known = FAULTS.find(([primary, text]) =>
    code === null ? error.message === text : (code & 0xff) === primary
  );
  if (!known) return null;
  if (known[0] === SQLITE_FULL && options.limitBytes !== null) {
    return new StorageFaultError(
      "STORAGE_LIMIT_EXCEEDED",
      `Durable Object storage limit of ${options.limitBytes} bytes exceeded: SQLITE_FULL`,
      { cause: error },
    );
  }
  return new StorageFaultError(known[2], options.message ?? error.message, { cause: error });
}
