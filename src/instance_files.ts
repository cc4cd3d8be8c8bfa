/**
 * Reading instance databases from the host, for inspection, export and backups.
 *
 * Nothing here runs user code or needs the instance's worker: the host opens the SQLite file
 * itself, read-only. Files are in WAL mode, so a read-only handle sees the last committed state
 * even while the instance is live and writing (its uncommitted implicit transaction is not
 * visible), and copies go through SQLite's online backup, which is consistent without stopping
 * the writer.
 */

import { backup, DatabaseSync, type SQLInputValue } from "node:sqlite";
import { deserialize } from "node:v8";

/** Rows a read-only query returns at most (the rest is reported as truncated). */
export const MAX_SQL_ROWS = 1000;

/** One stored KV entry, its value decoded. */
export interface KvItem {
  key: string;
  /**
   * `json` when `value` is the stored value itself; otherwise the value's kind (`Map`,
   * `Date`, `bigint`, `Uint8Array`, `undefined`, …) and `value` is a readable description.
   */
  type: string;
  value: unknown;
  /** Serialized size in bytes. */
  size: number;
}

/** A page of KV entries; `next` is the `start` of the following page, or null. */
export interface KvPage {
  items: KvItem[];
  next: string | null;
}

/** Which keys to read. */
export interface KvQuery {
  prefix: string;
  /** First key to return (inclusive); keys before `prefix` are skipped anyway. */
  start: string;
  limit: number;
}

/** The answer of a read-only query. */
export interface SqlResult {
  columns: string[];
  rows: Record<string, unknown>[];
  truncated: boolean;
}

/** A client mistake in a query (syntax, a write, a missing table): worth a 400. */
export class QueryError extends Error {
  override name = "QueryError";
  readonly reason: "READ_ONLY" | "SQL_ERROR";
  constructor(reason: "READ_ONLY" | "SQL_ERROR", message: string) {
    super(message);
    this.reason = reason;
  }
}

const SQLITE_HEADER = "SQLite format 3\0";

/** Reads one page of `_cf_KV`. */
export function readKv(path: string, query: KvQuery): KvPage {
  return withReadOnly(path, (db) => {
    if (!hasTable(db, "_cf_KV")) return { items: [], next: null };
    const start = query.start > query.prefix ? query.start : query.prefix;
    const rows = db.prepare(
      "SELECT key, value FROM _cf_KV WHERE key >= ? AND substr(key, 1, length(?)) = ? " +
        "ORDER BY key LIMIT ?",
    ).all(start, query.prefix, query.prefix, query.limit + 1);
    const items = rows.slice(0, query.limit).map((row) => {
      const bytes = row.value instanceof Uint8Array ? row.value : new Uint8Array();
      return { key: String(row.key), size: bytes.byteLength, ...describeValue(bytes) };
    });
    const after = rows[query.limit];
    return { items, next: after ? String(after.key) : null };
  });
}

/** The instance's alarm time (ms since the epoch), or null. */
export function readAlarm(path: string): number | null {
  return withReadOnly(path, (db) => {
    if (!hasTable(db, "_cf_META")) return null;
    const row = db.prepare("SELECT value FROM _cf_META WHERE key = 'alarm'").get();
    return typeof row?.value === "number" ? row.value : null;
  });
}

/**
 * Runs one read-only statement. An authorizer refuses anything but reading at prepare time
 * ({@linkcode QueryError} `READ_ONLY`), so nothing is ever written, even on a handle that could.
 */
export function querySql(path: string, query: string, params: unknown[]): SqlResult {
  return withReadOnly(path, (db) => {
    (db as unknown as Authorizable).setAuthorizer(readOnlyAuthorizer);
    try {
      const statement = db.prepare(query);
      const columns = statement.columns().map((column) => column.name);
      const values = params.map(sqlParam);
      // iterate() stops silently on an error, so it only bounds the work: a result that fits
      // is read again with all(), which reports errors.
      const rows: Record<string, unknown>[] = [];
      for (const row of statement.iterate(...values)) {
        rows.push(row);
        if (rows.length > MAX_SQL_ROWS) break;
      }
      const truncated = rows.length > MAX_SQL_ROWS;
      const complete = truncated ? rows.slice(0, MAX_SQL_ROWS) : statement.all(...values);
      return { columns, rows: complete.map(jsonRow), truncated };
    } catch (error) {
      if (error instanceof QueryError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      if (/\bWITH\s+RECURSIVE\b/i.test(query)) {
        throw new QueryError(
          "READ_ONLY",
          "Cannot run a recursive query: inspection queries run on the server's main thread " +
            "and must finish",
        );
      }
      if (/not authorized|readonly|read-only/i.test(message)) {
        throw new QueryError("READ_ONLY", `Cannot run a query that writes: ${message}`);
      }
      throw new QueryError("SQL_ERROR", message);
    }
  });
}

/** SQLite's authorizer codes used here (sqlite3.h; node:sqlite's are untyped in Deno 2.9). */
const AUTH = {
  OK: 0,
  DENY: 1,
  PRAGMA: 19,
  READ: 20,
  SELECT: 21,
  FUNCTION: 31,
  RECURSIVE: 33,
} as const;

/** `DatabaseSync.setAuthorizer`, which Deno 2.9.6 has but its type declarations lack. */
interface Authorizable {
  setAuthorizer(
    callback: (action: number, a: string | null, b: string | null) => number,
  ): void;
}

/** PRAGMAs that take an argument yet only read (the schema of a table or index). */
const SCHEMA_PRAGMAS = new Set([
  "table_info",
  "table_xinfo",
  "table_list",
  "index_list",
  "index_info",
  "index_xinfo",
  "foreign_key_list",
]);

/**
 * Reading actions: SELECT, table reads, functions, recursive CTEs, PRAGMAs without a value
 * (`PRAGMA x` reads x; `PRAGMA x = v` sets it) and the schema PRAGMAs.
 */
function readOnlyAuthorizer(action: number, arg1: string | null, arg2: string | null): number {
  switch (action) {
    case AUTH.SELECT:
    case AUTH.READ:
    case AUTH.FUNCTION:
      return AUTH.OK;
    case AUTH.PRAGMA:
      return arg2 === null || SCHEMA_PRAGMAS.has(arg1?.toLowerCase() ?? "") ? AUTH.OK : AUTH.DENY;
    default:
      return AUTH.DENY;
  }
}

/** Writes a consistent copy of a database to `dest` (SQLite online backup, live-safe). */
export async function copyDatabase(path: string, dest: string): Promise<void> {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    await backup(db, dest);
  } finally {
    db.close();
  }
}

/** Throws unless `path` is an intact SQLite database (what an import must be). */
export async function checkDatabase(path: string): Promise<void> {
  const file = await Deno.open(path);
  const header = new Uint8Array(16);
  try {
    await file.read(header);
  } finally {
    file.close();
  }
  if (new TextDecoder().decode(header) !== SQLITE_HEADER) {
    throw new QueryError("SQL_ERROR", "The file is not an SQLite database");
  }
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const row = db.prepare("PRAGMA quick_check").get();
    const verdict = row ? String(Object.values(row)[0]) : "no answer";
    if (verdict !== "ok") {
      throw new QueryError("SQL_ERROR", `The database failed its integrity check: ${verdict}`);
    }
  } catch (error) {
    if (error instanceof QueryError) throw error;
    throw new QueryError("SQL_ERROR", `The database cannot be read: ${String(error)}`);
  } finally {
    db.close();
  }
}

/**
 * Decodes a stored value: JSON text as itself, V8-serialized values (first byte 0xFF) as their
 * kind plus a readable description, since they have no exact JSON form.
 */
export function describeValue(bytes: Uint8Array): { type: string; value: unknown } {
  try {
    if (bytes[0] !== 0xff) {
      return { type: "json", value: JSON.parse(new TextDecoder().decode(bytes)) };
    }
    const value: unknown = deserialize(bytes);
    return { type: kindOf(value), value: Deno.inspect(value, INSPECT) };
  } catch (error) {
    return { type: "undecodable", value: error instanceof Error ? error.message : String(error) };
  }
}

const INSPECT: Deno.InspectOptions = {
  compact: true,
  breakLength: Infinity,
  depth: 6,
  iterableLimit: 200,
  strAbbreviateSize: 2000,
};

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  const name = Object.getPrototypeOf(value)?.constructor?.name;
  return typeof name === "string" && name ? name : "object";
}

function withReadOnly<T>(path: string, fn: (db: DatabaseSync) => T): T {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    db.exec("PRAGMA query_only = ON");
    return fn(db);
  } finally {
    db.close();
  }
}

function hasTable(db: DatabaseSync, name: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !==
    undefined;
}

function sqlParam(value: unknown): SQLInputValue {
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value === null || typeof value === "string" || typeof value === "number") return value;
  throw new QueryError("SQL_ERROR", `Unsupported parameter ${JSON.stringify(value)}`);
}

/** Rows as JSON: BLOBs become `{ "blob": "<base64>" }`, big integers strings. */
function jsonRow(row: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(row)) {
    if (value instanceof Uint8Array) result[column] = { blob: base64(value) };
    else if (typeof value === "bigint") result[column] = value.toString();
    else result[column] = value;
  }
  return result;
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}
