/**
 * `ctx.storage.sql`: Cloudflare's synchronous SQL API on the instance's node:sqlite database.
 *
 * `exec()` runs at once, inside the same implicit write transaction as the KV API (a statement
 * that writes calls `beginWrite()` first), so SQL and KV writes commit or roll back together.
 * Several statements may be passed separated by `;`; they run one after another and the
 * cursor belongs to the last. Statement boundaries come from SQLite itself (the compiled
 * statement's source text); `sql_lexer.ts` covers what node:sqlite does not report.
 *
 * Results are read eagerly: node:sqlite's lazy iterator costs about 40 times as much as
 * reading every row at once (measured: ~20 µs vs ~0.5 µs for a one-row query), so the cursor
 * walks rows that were already read. `rowsRead` imitates workerd's cursor, which stays one row
 * ahead of what it has returned; it counts rows returned, not rows SQLite scanned.
 * `rowsWritten` is the statement's change count (`total_changes()`), which leaves out schema
 * changes. Prepared statements are cached by SQL text, like workerd.
 *
 * Cloudflare's limits (compound SELECT terms, columns, statement length, …) are set on the
 * connection, as workerd does; only the string/BLOB size limit is lifted for internal code.
 */

import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import type { InstanceDb } from "./instance_db.ts";
import { isAllowedName, SqlAuthorizer, TRANSACTION_MESSAGE } from "./sql_authorizer.ts";
import { formatSqliteError, isSyntaxMessage, sqliteCode } from "./sql_errors.ts";
import {
  hasStatement,
  pragmaAssignment,
  renameTarget,
  scanSql,
  type SqlParameters,
  type SqlToken,
  statementParameters,
  utf8Length,
} from "./sql_lexer.ts";
import { registerMathFunctions } from "./sql_math.ts";
import { SqlStorageCursor } from "./sql_cursor.ts";

const NO_STATEMENT = "SQL code did not contain a statement.";
const MULTIPLE_WITH_PARAMETERS = "When executing multiple SQL statements in a single call, " +
  "only the last statement can have parameters.";
const WRONG_BINDINGS = "Wrong number of parameter bindings for SQL query.";

/**
 * Cloudflare's SQLite limits (docs values where the docs give one). Like workerd, they are set
 * for the whole connection, so the runtime's own statements must stay within them too (they
 * do: few parameters, short LIKE patterns, no compound SELECTs or triggers).
 */
const CONNECTION_LIMITS = {
  sqlLength: 100_000,
  column: 100,
  exprDepth: 100,
  compoundSelect: 5,
  functionArg: 32,
  likePatternLength: 50,
  variableNumber: 100,
  triggerDepth: 10,
};
type Limits = Record<keyof typeof CONNECTION_LIMITS, number>;

/** Max string/BLOB size for user SQL; only while it runs, as KV values may be up to 2 MiB. */
const USER_MAX_LENGTH = 2_000_000;

/** Total SQL text kept in the statement cache before the least recently used is dropped. */
const CACHE_MAX_CHARS = 1024 * 1024;
/** Longer texts (one-off scripts, and every tail of one) are not cached. */
const CACHE_MAX_TEXT = 16 * 1024;

const SQL_SPACE = new Set([" ", "\t", "\n", "\r", "\v", "\f"]);

const CHANGES = "SELECT total_changes() AS n";
const SCHEMA_VERSION = "PRAGMA schema_version";
const DATABASE_SIZE = `SELECT (SELECT page_count FROM pragma_page_count())
  - (SELECT freelist_count FROM pragma_freelist_count()) AS pages,
  (SELECT page_size FROM pragma_page_size()) AS size`;

/** node:sqlite members that Deno 2.9.6 has but its bundled type declarations lack. */
interface DatabaseExtras {
  limits: Limits & { length: number };
  setAuthorizer(
    callback: (action: number, a: string | null, b: string | null, dbName: string | null) => number,
  ): void;
  enableDefensive(active: boolean): void;
}

function extras(db: DatabaseSync): DatabaseExtras {
  return db as unknown as DatabaseExtras;
}

/** Same for `StatementSync`. */
interface StatementExtras {
  setReturnArrays(enabled: boolean): void;
}

interface CachedStatement {
  statement: StatementSync;
  /** How much of the text it was compiled from this statement took (UTF-16 units). */
  length: number;
  write: boolean;
  commitFirst: boolean;
  params: SqlParameters;
  /** Result column names, valid for schema version `schema`. */
  names: string[] | null;
  schema: number;
}

/** `ctx.storage.sql` of one instance. */
export class SqlStorage {
  readonly #db: InstanceDb;
  readonly #auth = new SqlAuthorizer();
  readonly #cache = new Map<string, CachedStatement>();
  #cacheChars = 0;
  readonly #defaultLength: number;
  #depth = 0;

  constructor(db: InstanceDb) {
    this.#db = db;
    const connection = extras(db.db);
    Object.assign(connection.limits, CONNECTION_LIMITS);
    this.#defaultLength = connection.limits.length;
    connection.setAuthorizer((action, a, b, dbName) => this.#auth.authorize(action, a, b, dbName));
    connection.enableDefensive(true);
    registerMathFunctions(db.db);
  }

  /** Runs `query` now and returns a cursor over the last statement's rows. */
  exec(query: string, ...bindings: unknown[]): SqlStorageCursor {
    const values = bindings.map(toSqlInput);
    let rest = String(query);
    if (rest.includes("\0")) rest = rest.slice(0, rest.indexOf("\0"));
    this.#enter();
    try {
      for (;;) {
        const entry = this.#prepare(rest);
        let tail = entry.length;
        while (tail < rest.length && SQL_SPACE.has(rest.charAt(tail))) tail++;
        if (tail === rest.length) {
          if (values.length !== entry.params.count) throw new Error(WRONG_BINDINGS);
          return this.#execute(entry, values);
        }
        if (entry.params.count > 0) throw new Error(MULTIPLE_WITH_PARAMETERS);
        this.#beforeRun(entry);
        this.#asUser(() => entry.statement.all());
        rest = rest.slice(tail);
      }
    } finally {
      this.#leave();
    }
  }

  /** Bytes in use: (page_count − freelist_count) × page_size. */
  get databaseSize(): number {
    const row = this.#db.statement(DATABASE_SIZE).get();
    return Number(row?.pages) * Number(row?.size);
  }

  #enter(): void {
    if (this.#depth++ === 0) extras(this.#db.db).limits.length = USER_MAX_LENGTH;
  }

  #leave(): void {
    if (--this.#depth === 0) extras(this.#db.db).limits.length = this.#defaultLength;
  }

  /** The compiled first statement of `text` (cached by text). */
  #prepare(text: string): CachedStatement {
    if (!hasStatement(text)) throw new Error(NO_STATEMENT);
    const cached = this.#cache.get(text);
    if (cached) {
      this.#cache.delete(text);
      this.#cache.set(text, cached);
      return cached;
    }
    const tokens = scanSql(text);
    if (!isAllowedName(renameTarget(text, tokens))) {
      throw new Error(formatSqliteError("not authorized", 23, -1));
    }
    // SQLite ignores `PRAGMA foreign_keys = …` compiled inside a transaction, so commit first.
    const commitFirst = pragmaAssignment(text, tokens) === "foreign_keys";
    if (commitFirst) this.#db.commitSafely();
    this.#auth.traits = { write: false };
    const statement = this.#asUser(() => this.#db.db.prepare(text), text, tokens);
    const length = sourceLength(text, statement.sourceSQL);
    const entry: CachedStatement = {
      statement,
      length,
      write: this.#auth.traits.write,
      commitFirst,
      params: statementParameters(text, tokens.filter((token) => token.end <= length)),
      names: null,
      schema: -1,
    };
    (statement as unknown as StatementExtras).setReturnArrays(true);
    statement.setReadBigInts(true);
    if (text.length > CACHE_MAX_TEXT) return entry;
    this.#cache.set(text, entry);
    this.#cacheChars += text.length;
    for (const key of this.#cache.keys()) {
      if (this.#cacheChars <= CACHE_MAX_CHARS) break;
      this.#cache.delete(key);
      this.#cacheChars -= key.length;
    }
    return entry;
  }

  /** Runs the last statement and wraps its rows. */
  #execute(entry: CachedStatement, values: SQLInputValue[]): SqlStorageCursor {
    this.#beforeRun(entry);
    const before = entry.write ? this.#totalChanges() : 0;
    const rows = this.#asUser(() => bind(entry, values));
    const written = entry.write ? this.#totalChanges() - before : 0;
    const schema = Number(this.#db.statement(SCHEMA_VERSION).get()?.schema_version);
    const first = rows[0];
    // A cached statement's columns change only with the schema (SQLite recompiles it then).
    if (entry.names === null || entry.schema !== schema || first?.length !== entry.names.length) {
      entry.names = entry.statement.columns().map((column) => column.name);
      entry.schema = schema;
    }
    return new SqlStorageCursor(rows, entry.names, written);
  }

  #beforeRun(entry: CachedStatement): void {
    if (entry.commitFirst) this.#db.commitSafely();
    if (entry.write) this.#db.beginWrite();
  }

  #totalChanges(): number {
    return Number(this.#db.statement(CHANGES).get()?.n);
  }

  /** Runs `fn` with the authorizer judging, turning SQLite errors into workerd's messages. */
  #asUser<T>(fn: () => T, text?: string, tokens?: SqlToken[]): T {
    this.#auth.active = true;
    this.#auth.refusedTransaction = false;
    try {
      return fn();
    } catch (error) {
      this.#auth.active = false;
      throw this.#translate(error, text, tokens);
    } finally {
      this.#auth.active = false;
    }
  }

  #translate(error: unknown, text?: string, tokens?: SqlToken[]): unknown {
    const code = sqliteCode(error);
    if (code === null || !(error instanceof Error)) return error;
    if ((code & 0xff) === 23 && this.#auth.refusedTransaction) {
      return new Error(TRANSACTION_MESSAGE);
    }
    const offset = text !== undefined && tokens !== undefined && isSyntaxMessage(error.message)
      ? this.#errorOffset(text, tokens, error.message)
      : -1;
    const message = formatSqliteError(error.message, code, offset);
    return this.#db.fault(error, message) ?? new Error(message);
  }

  /**
   * `sqlite3_error_offset`, which node:sqlite does not expose: the parser fails at the same
   * token for every prefix of the text that includes it, and for no shorter prefix, so the
   * shortest failing prefix (binary search, compile only) ends with the offending token.
   * PRAGMAs are left out: some take effect while being compiled, so a prefix must not be.
   */
  #errorOffset(text: string, tokens: SqlToken[], message: string): number {
    const candidates = tokens.filter((token) => token.kind !== "space" && token.kind !== "comment");
    const first = candidates[0];
    if (first && text.slice(first.start, first.end).toUpperCase() === "PRAGMA") return -1;
    let low = 0;
    let high = candidates.length - 1;
    let found: SqlToken | undefined;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const token = candidates[middle];
      if (token === undefined) break;
      if (this.#compileError(text.slice(0, token.end)) === message) {
        found = token;
        high = middle - 1;
      } else {
        low = middle + 1;
      }
    }
    return found === undefined ? -1 : utf8Length(text.slice(0, found.start));
  }

  #compileError(text: string): string | null {
    if (!hasStatement(text)) return null;
    this.#auth.active = true;
    try {
      this.#db.db.prepare(text);
      return null;
    } catch (error) {
      return error instanceof Error ? error.message : null;
    } finally {
      this.#auth.active = false;
    }
  }
}

/** Runs a compiled statement with positional bindings mapped onto SQLite's indexes. */
function bind(entry: CachedStatement, values: SQLInputValue[]): SQLInputValue[][] {
  const { statement, params } = entry;
  if (!params.hasNamed) return statement.all(...values) as unknown as SQLInputValue[][];
  // node:sqlite binds named parameters by name and the rest in order.
  const named: Record<string, SQLInputValue> = {};
  const anonymous: SQLInputValue[] = [];
  params.names.forEach((name, index) => {
    const value = values[index] ?? null;
    if (name === null) anonymous.push(value);
    else named[name] = value;
  });
  return statement.all(named, ...anonymous) as unknown as SQLInputValue[][];
}

/** Length in UTF-16 units of the prefix of `text` that SQLite compiled (`source`). */
function sourceLength(text: string, source: string): number {
  if (text.startsWith(source)) return source.length;
  const target = utf8Length(source);
  let index = 0;
  while (index < text.length && utf8Length(text.slice(0, index)) < target) index++;
  return index;
}

/** A binding as SQLite receives it (WebIDL conversion of workerd's binding union). */
function toSqlInput(value: unknown): SQLInputValue {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case "string":
    case "number":
      return value;
    case "boolean":
      return value ? 1 : 0;
    case "bigint":
      throw new TypeError("Cannot convert a BigInt value to a number");
    case "symbol":
      throw new TypeError("Cannot convert a Symbol value to a string");
  }
  if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
    return new Uint8Array(value);
  }
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  return String(value);
}
