/**
 * Key conversion and `list()` ranges for the KV API.
 *
 * Keys are ordered by their UTF-8 bytes, which is what SQLite's BINARY collation compares, so
 * every list option becomes a plain SQL bound on `_cf_KV.key` and SQLite intersects them: a
 * `prefix` is the range `[prefix, successor(prefix))`, and a range that ends up empty (start
 * past end, a prefix disjoint from start/end) simply matches no rows. `reverse` only flips
 * `ORDER BY`, so with `limit` it yields the last N keys of the range.
 */

/** One SQL bound on the key: `>=`/`>` are lower bounds, `<` is the exclusive upper bound. */
export type KeyBound = readonly [op: ">=" | ">" | "<", key: string];

/** A compiled `list()` request. */
export interface KeyRange {
  bounds: readonly KeyBound[];
  reverse: boolean;
  /** Maximum number of keys, or null for all of them. */
  limit: number | null;
}

/** Options shared by `storage.list()` and `storage.kv.list()` (others are ignored). */
export interface ListOptions {
  start?: string;
  startAfter?: string;
  end?: string;
  prefix?: string;
  reverse?: boolean;
  limit?: number;
}

const MAX_CODE_POINT = 0x10ffff;

/** Converts a key argument to a string the way WebIDL `DOMString` does (`1` → `"1"`). */
export function toKeyString(key: unknown): string {
  if (typeof key === "string") return key;
  if (typeof key === "symbol") throw new TypeError("Cannot convert a Symbol value to a string");
  return String(key);
}

/** Validates `options` and turns them into SQL bounds. */
export function parseListOptions(options: unknown): KeyRange {
  const opts: Record<string, unknown> = typeof options === "object" && options !== null
    ? options as Record<string, unknown>
    : {};
  if (opts.start !== undefined && opts.startAfter !== undefined) {
    throw new TypeError("list() cannot be called with both start and startAfter values.");
  }
  let limit: number | null = null;
  if (opts.limit !== undefined) {
    limit = Math.trunc(Number(opts.limit));
    if (!(limit > 0)) throw new TypeError("List limit must be positive.");
  }
  const bounds: KeyBound[] = [];
  if (opts.start !== undefined) bounds.push([">=", toKeyString(opts.start)]);
  if (opts.startAfter !== undefined) bounds.push([">", toKeyString(opts.startAfter)]);
  if (opts.end !== undefined) bounds.push(["<", toKeyString(opts.end)]);
  const prefix = opts.prefix === undefined ? "" : toKeyString(opts.prefix);
  if (prefix !== "") {
    bounds.push([">=", prefix]);
    const successor = prefixSuccessor(prefix);
    if (successor !== null) bounds.push(["<", successor]);
  }
  return { bounds, reverse: Boolean(opts.reverse), limit };
}

/** The range left after a page that ended at `lastKey` (keyset pagination). */
export function rangeAfter(range: KeyRange, lastKey: string): KeyRange {
  const keep = range.bounds.filter(([op]) => range.reverse ? op !== "<" : op === "<");
  const cursor: KeyBound = range.reverse ? ["<", lastKey] : [">", lastKey];
  return { ...range, bounds: [...keep, cursor] };
}

/** `SELECT key, value` over `range`, ordered, with the row limit as the last parameter. */
export function rangeQuery(range: KeyRange): { sql: string; params: string[] } {
  const where = range.bounds.length === 0
    ? ""
    : ` WHERE ${range.bounds.map(([op]) => `key ${op} ?`).join(" AND ")}`;
  const order = range.reverse ? "DESC" : "ASC";
  return {
    sql: `SELECT key, value FROM _cf_KV${where} ORDER BY key ${order} LIMIT ?`,
    params: range.bounds.map(([, key]) => key),
  };
}

/**
 * The smallest string greater than every string that starts with `prefix`, in code point
 * (= UTF-8 byte) order: the last code point that can grow is incremented, skipping the
 * surrogate block. Null when every code point is already the maximum.
 */
export function prefixSuccessor(prefix: string): string | null {
  const points = Array.from(prefix, (char) => char.codePointAt(0) ?? 0);
  while (points.length > 0) {
    const last = points.pop() ?? MAX_CODE_POINT;
    if (last < MAX_CODE_POINT) {
      points.push(last + 1 === 0xd800 ? 0xe000 : last + 1);
      return String.fromCodePoint(...points);
    }
  }
  return null;
}
