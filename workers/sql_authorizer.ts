/**
 * The rules user SQL runs under (Cloudflare's `ctx.storage.sql` dialect).
 *
 * SQLite asks the authorizer about every table, column, function and PRAGMA a statement
 * touches while it compiles the statement (and again when it recompiles it after a schema
 * change). The authorizer is installed once for the whole connection, so it only judges while
 * `active` is set, which `sql.ts` does around compiling and running user statements; the
 * runtime's own statements (KV, alarms, transaction control) are never judged, even when
 * SQLite recompiles one of them long after it was prepared.
 *
 * Refused: names starting with `_cf_` (any case), BEGIN/COMMIT/SAVEPOINT, ATTACH, anything in
 * the temp schema but reads, virtual tables other than FTS5, `sqlite_*()` functions, and
 * PRAGMAs outside a small allow-list. While judging it also notes whether the statement
 * writes, so the caller knows to open the implicit write transaction first.
 */

/** SQLite's authorizer action and result codes (sqlite3.h; node:sqlite's are untyped). */
const C = {
  SQLITE_OK: 0,
  SQLITE_DENY: 1,
  SQLITE_CREATE_INDEX: 1,
  SQLITE_CREATE_TABLE: 2,
  SQLITE_CREATE_TRIGGER: 7,
  SQLITE_CREATE_VIEW: 8,
  SQLITE_DELETE: 9,
  SQLITE_DROP_INDEX: 10,
  SQLITE_DROP_TABLE: 11,
  SQLITE_DROP_TRIGGER: 16,
  SQLITE_DROP_VIEW: 17,
  SQLITE_INSERT: 18,
  SQLITE_PRAGMA: 19,
  SQLITE_READ: 20,
  SQLITE_SELECT: 21,
  SQLITE_TRANSACTION: 22,
  SQLITE_UPDATE: 23,
  SQLITE_ALTER_TABLE: 26,
  SQLITE_REINDEX: 27,
  SQLITE_ANALYZE: 28,
  SQLITE_CREATE_VTABLE: 29,
  SQLITE_DROP_VTABLE: 30,
  SQLITE_FUNCTION: 31,
  SQLITE_SAVEPOINT: 32,
  SQLITE_RECURSIVE: 33,
} as const;

/** What user code sees when it tries to run BEGIN, COMMIT, SAVEPOINT and the like. */
export const TRANSACTION_MESSAGE = "To execute a transaction, please use the " +
  "state.storage.transaction() or state.storage.transactionSync() APIs instead of the SQL " +
  "BEGIN TRANSACTION or SAVEPOINT statements. The JavaScript API is safer because it will " +
  "automatically roll back on exceptions, and because it interacts correctly with Durable " +
  "Objects' automatic atomic write coalescing.";

/** What the authorizer learned about the statement it last judged. */
export interface StatementTraits {
  /** It modifies the database: run it inside the implicit write transaction. */
  write: boolean;
}

type PragmaRule = "none" | "any" | "bool" | "name" | "optionalName" | "optionalInt" | "intOrName";

const PRAGMAS = new Map<string, PragmaRule>([
  ["data_version", "none"],
  ["page_size", "none"],
  ["table_list", "any"],
  ["table_info", "name"],
  ["table_xinfo", "name"],
  ["index_info", "name"],
  ["index_list", "name"],
  ["index_xinfo", "name"],
  ["foreign_key_list", "name"],
  ["foreign_key_check", "optionalName"],
  ["quick_check", "intOrName"],
  ["optimize", "optionalInt"],
  ["case_sensitive_like", "bool"],
  ["foreign_keys", "bool"],
  ["defer_foreign_keys", "bool"],
  ["ignore_check_constraints", "bool"],
  ["legacy_alter_table", "bool"],
  ["recursive_triggers", "bool"],
  ["reverse_unordered_selects", "bool"],
]);

const BOOLEANS = new Set(["true", "false", "yes", "no", "on", "off", "1", "0"]);

/** Virtual table modules user SQL may use. */
const MODULES = new Set(["fts5", "fts5vocab"]);

/** `sqlite_*` functions SQLite itself calls while running ALTER TABLE. */
const ALTER_FUNCTIONS = new Set([
  "sqlite_rename_column",
  "sqlite_rename_table",
  "sqlite_rename_test",
  "sqlite_drop_column",
  "sqlite_rename_quotefix",
]);

const DENIED_FUNCTIONS = new Set(["load_extension", "fts3_tokenizer"]);

/** Whether user SQL may use an object of this name (`_cf_*` is the runtime's). */
export function isAllowedName(name: string | null): boolean {
  return name === null || name.length < 4 || name.slice(0, 4).toLowerCase() !== "_cf_";
}

function isBoolean(arg: string): boolean {
  const quoted = arg.length >= 2 && (arg[0] === "'" || arg[0] === '"') && arg.at(-1) === arg[0];
  return BOOLEANS.has((quoted ? arg.slice(1, -1) : arg).trim().toLowerCase());
}

function isInt32(arg: string): boolean {
  const text = arg.trim();
  if (!/^[+-]?(0x[0-9a-f]+|\d+)$/i.test(text)) return false;
  const negative = text.startsWith("-");
  const digits = text.replace(/^[+-]/, "");
  const value = Number(digits) * (negative ? -1 : 1);
  return value >= -(2 ** 31) && value < 2 ** 31;
}

/** The connection-wide authorizer for user SQL (see the module comment). */
export class SqlAuthorizer {
  /** Judge statements only while this is set (user SQL is compiling or running). */
  active = false;
  /** Set when a transaction statement was refused, so the caller can explain why. */
  refusedTransaction = false;
  /** Traits of the statement being compiled; reset by the caller before each compile. */
  traits: StatementTraits = { write: false };

  /** The callback for `DatabaseSync.setAuthorizer`. */
  authorize(
    action: number,
    arg1: string | null,
    arg2: string | null,
    dbName: string | null,
  ): number {
    if (!this.active) return C.SQLITE_OK;
    return this.#allowed(action, arg1, arg2, dbName) ? C.SQLITE_OK : C.SQLITE_DENY;
  }

  #allowed(action: number, a: string | null, b: string | null, dbName: string | null): boolean {
    if (dbName === "temp") {
      return (action === C.SQLITE_READ || action === C.SQLITE_UPDATE) && isAllowedName(a);
    }
    if (dbName !== null && dbName !== "main") return false;
    switch (action) {
      case C.SQLITE_SELECT:
      case C.SQLITE_RECURSIVE:
        return true;
      case C.SQLITE_READ:
        return isAllowedName(a);
      case C.SQLITE_ANALYZE:
        // Statistics about internal tables are not their data.
        this.traits.write = true;
        return true;
      case C.SQLITE_UPDATE:
        // (table, column): only the table name is reserved.
        this.traits.write = true;
        return isAllowedName(a);
      case C.SQLITE_CREATE_TABLE:
      case C.SQLITE_DROP_TABLE:
      case C.SQLITE_CREATE_VIEW:
      case C.SQLITE_DROP_VIEW:
      case C.SQLITE_INSERT:
      case C.SQLITE_DELETE:
      case C.SQLITE_REINDEX:
      case C.SQLITE_ALTER_TABLE:
      case C.SQLITE_CREATE_INDEX:
      case C.SQLITE_DROP_INDEX:
      case C.SQLITE_CREATE_TRIGGER:
      case C.SQLITE_DROP_TRIGGER:
        // ALTER_TABLE passes (schema, table); the index and trigger ones (name, table).
        this.traits.write = true;
        return isAllowedName(a) && isAllowedName(b);
      case C.SQLITE_CREATE_VTABLE:
      case C.SQLITE_DROP_VTABLE:
        this.traits.write = true;
        return MODULES.has((b ?? "").toLowerCase()) && isAllowedName(a);
      case C.SQLITE_TRANSACTION:
      case C.SQLITE_SAVEPOINT:
        this.refusedTransaction = true;
        return false;
      case C.SQLITE_PRAGMA:
        return this.#pragma((a ?? "").toLowerCase(), b);
      case C.SQLITE_FUNCTION: {
        const name = (b ?? "").toLowerCase();
        if (DENIED_FUNCTIONS.has(name)) return false;
        return !name.startsWith("sqlite_") || ALTER_FUNCTIONS.has(name);
      }
      default:
        // ATTACH, DETACH, temp objects, COPY and anything newer than this list.
        return false;
    }
  }

  #pragma(name: string, arg: string | null): boolean {
    switch (PRAGMAS.get(name)) {
      case "none":
        return arg === null;
      case "any":
        return true;
      case "bool":
        if (arg === null) return true;
        if (name === "defer_foreign_keys") this.traits.write = true;
        return isBoolean(arg);
      case "name":
        return arg !== null && isAllowedName(arg);
      case "optionalName":
        return isAllowedName(arg);
      case "optionalInt":
        this.traits.write = true;
        return arg === null || isInt32(arg);
      case "intOrName":
        return arg === null || /^\d+$/.test(arg.trim()) || isAllowedName(arg);
      default:
        return false;
    }
  }
}
