/**
 * The cursor `sql.exec()` returns, over rows that were already read (see `sql.ts`).
 *
 * Values reach user code as Cloudflare hands them out: INTEGER and REAL as numbers (integers
 * above 2^53 lose precision), BLOB as a fresh `ArrayBuffer`, NULL as null. Row objects are
 * keyed by column name, a repeated name keeping the last column's value; `raw()` gives arrays
 * with every column and shares the cursor's position.
 */

/** A value in a result row. */
export type SqlValue = ArrayBuffer | string | number | null;

const NO_RESULTS = "Expected exactly one result from SQL query, but got no results.";
const MULTIPLE_RESULTS = "Expected exactly one result from SQL query, but got multiple results.";

/** A result value as user code sees it: numbers (lossy above 2^53) and ArrayBuffers. */
function toSqlValue(value: unknown): SqlValue {
  if (typeof value === "bigint") return Number(value);
  if (value instanceof Uint8Array) {
    const whole = value.byteOffset === 0 && value.byteLength === value.buffer.byteLength;
    return whole && value.buffer instanceof ArrayBuffer ? value.buffer : value.slice().buffer;
  }
  if (typeof value === "string" || typeof value === "number") return value;
  return null;
}

function toRowObject(names: readonly string[], row: SqlValue[]): Record<string, SqlValue> {
  const object: Record<string, SqlValue> = {};
  names.forEach((name, index) => {
    const value = row[index] ?? null;
    if (name === "__proto__") {
      Object.defineProperty(object, name, { value, enumerable: true, writable: true });
    } else {
      object[name] = value;
    }
  });
  return object;
}

function done<T>(): IteratorResult<T, undefined> {
  return { done: true } as IteratorReturnResult<undefined>;
}

/**
 * The rows of one `exec()`. Row objects are keyed by column name (a repeated name keeps the
 * last column's value); `raw()` gives arrays with every column and shares the position.
 */
export class SqlStorageCursor implements IterableIterator<Record<string, SqlValue>> {
  readonly #rows: unknown[][];
  readonly #names: readonly string[];
  readonly #written: number;
  #position = 0;

  /** Made by `SqlStorage.exec()`. */
  constructor(rows: unknown[][], names: readonly string[], rowsWritten: number) {
    this.#rows = rows;
    this.#names = names;
    this.#written = rowsWritten;
  }

  /** The next row object, or `{done: true}` (without a `value` key). */
  next(): IteratorResult<Record<string, SqlValue>, undefined> {
    const row = this.#take();
    return row === null ? done() : { done: false, value: toRowObject(this.#names, row) };
  }

  /** The remaining rows as objects. */
  toArray(): Record<string, SqlValue>[] {
    const rows: Record<string, SqlValue>[] = [];
    for (let row = this.#take(); row !== null; row = this.#take()) {
      rows.push(toRowObject(this.#names, row));
    }
    return rows;
  }

  /** The only remaining row; throws (and consumes the cursor) if there are none or several. */
  one(): Record<string, SqlValue> {
    const row = this.#take();
    if (row === null) throw new Error(NO_RESULTS);
    if (this.#position < this.#rows.length) {
      this.#position = this.#rows.length;
      throw new Error(MULTIPLE_RESULTS);
    }
    return toRowObject(this.#names, row);
  }

  /** An iterator over the remaining rows as arrays, sharing this cursor's position. */
  raw(): SqlStorageRawCursor {
    return new SqlStorageRawCursor(() => this.#take());
  }

  /** Result column names in order (repeats included); `[]` for statements without columns. */
  get columnNames(): string[] {
    return [...this.#names];
  }

  /** Rows read so far: the cursor counts one row ahead of what it has returned. */
  get rowsRead(): number {
    return Math.min(this.#position + 1, this.#rows.length);
  }

  /** Rows the statement changed. */
  get rowsWritten(): number {
    return this.#written;
  }

  [Symbol.iterator](): this {
    return this;
  }

  #take(): SqlValue[] | null {
    const row = this.#rows[this.#position];
    if (row === undefined) return null;
    this.#position++;
    return row.map(toSqlValue);
  }
}

/** `cursor.raw()`: rows as arrays of every column. */
export class SqlStorageRawCursor implements IterableIterator<SqlValue[]> {
  readonly #take: () => SqlValue[] | null;

  /** Made by {@linkcode SqlStorageCursor.raw}. */
  constructor(take: () => SqlValue[] | null) {
    this.#take = take;
  }

  /** The next row array, or `{done: true}`. */
  next(): IteratorResult<SqlValue[], undefined> {
    const row = this.#take();
    return row === null ? done() : { done: false, value: row };
  }

  /** The remaining rows as arrays. */
  toArray(): SqlValue[][] {
    const rows: SqlValue[][] = [];
    for (let row = this.#take(); row !== null; row = this.#take()) rows.push(row);
    return rows;
  }

  [Symbol.iterator](): this {
    return this;
  }
}
