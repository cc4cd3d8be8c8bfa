/**
 * The `_cf_KV` table behind both KV APIs (`storage.get/put/…` and `storage.kv`).
 *
 * SQLite runs synchronously on the object's own thread, so every read already sees every
 * earlier write of this object, awaited or not: there is no write-back cache to keep
 * consistent. Each write opens the implicit transaction first (`beginWrite`); multi-key writes
 * run in a savepoint so they are all-or-nothing.
 */

import type { InstanceDb } from "./instance_db.ts";
import { type KeyRange, rangeQuery, toKeyString } from "./kv_range.ts";
import { decodeValue, encodeValue } from "./value_codec.ts";

/** Framing bytes the V8 serializer adds around a value (workerd allows the same slack). */
const SERIALIZATION_OVERHEAD = 34;

/** Size limits applied to keys (UTF-8 bytes) and encoded values. */
export interface KvLimits {
  maxKeyBytes: number;
  maxValueBytes: number;
}

const SQL = {
  get: "SELECT value FROM _cf_KV WHERE key = ?",
  getMany:
    "SELECT key, value FROM _cf_KV WHERE key IN (SELECT value FROM json_each(?)) ORDER BY key",
  put: "INSERT OR REPLACE INTO _cf_KV (key, value) VALUES (?, ?)",
  delete: "DELETE FROM _cf_KV WHERE key = ?",
  deleteMany: "DELETE FROM _cf_KV WHERE key IN (SELECT value FROM json_each(?))",
  clear: "DELETE FROM _cf_KV",
} as const;

/** Typed access to `_cf_KV`; keys and values are validated before anything is written. */
export class KvStore {
  readonly #db: InstanceDb;
  readonly #limits: KvLimits;

  constructor(db: InstanceDb, limits: KvLimits) {
    this.#db = db;
    this.#limits = limits;
  }

  /** Converts `key` to a string and enforces the key size limit. */
  key(key: unknown): string {
    const text = toKeyString(key);
    const max = this.#limits.maxKeyBytes;
    if (text.length * 3 > max) {
      const size = utf8Length(text);
      if (size > max) {
        throw new RangeError(
          `Keys cannot be larger than ${max} bytes. A key of size ${size} was provided.`,
        );
      }
    }
    return text;
  }

  /**
   * Serializes `value` now (later mutation does not matter) and enforces the value limit. The
   * serialized form may exceed the limit by the serializer's framing, as in workerd, so a
   * `Uint8Array` of exactly the limit fits.
   */
  encode(value: unknown): Uint8Array {
    const bytes = encodeValue(value);
    const max = this.#limits.maxValueBytes;
    if (bytes.byteLength > max + SERIALIZATION_OVERHEAD) {
      throw new RangeError(
        `Values cannot be larger than ${max} bytes. A value of size ${bytes.byteLength} was provided.`,
      );
    }
    return bytes;
  }

  /** The value stored under `key`, or undefined. */
  get(key: string): unknown {
    const row = this.#db.statement(SQL.get).get(key);
    return row === undefined ? undefined : decodeValue(blob(row.value));
  }

  /** The existing keys among `keys`, sorted in key order. */
  getMany(keys: readonly string[]): Map<string, unknown> {
    const result = new Map<string, unknown>();
    if (keys.length === 0) return result;
    for (const row of this.#db.statement(SQL.getMany).all(JSON.stringify(keys))) {
      result.set(String(row.key), decodeValue(blob(row.value)));
    }
    return result;
  }

  /** Stores already-encoded bytes. */
  put(key: string, bytes: Uint8Array): void {
    this.#db.beginWrite();
    this.#db.guard(() => this.#db.statement(SQL.put).run(key, bytes));
  }

  /** Stores several entries atomically. */
  putMany(entries: readonly (readonly [string, Uint8Array])[]): void {
    if (entries.length === 0) return;
    const statement = this.#db.statement(SQL.put);
    this.#db.savepoint(() => {
      for (const [key, bytes] of entries) statement.run(key, bytes);
    });
  }

  /** Deletes `key`; true when it existed. */
  delete(key: string): boolean {
    this.#db.beginWrite();
    return Number(this.#db.guard(() => this.#db.statement(SQL.delete).run(key)).changes) > 0;
  }

  /** Deletes `keys`; the number of them that existed. */
  deleteMany(keys: readonly string[]): number {
    if (keys.length === 0) return 0;
    this.#db.beginWrite();
    const statement = this.#db.statement(SQL.deleteMany);
    return Number(this.#db.guard(() => statement.run(JSON.stringify(keys))).changes);
  }

  /** Deletes every key. */
  clear(): void {
    this.#db.beginWrite();
    this.#db.guard(() => this.#db.statement(SQL.clear).run());
  }

  /** Up to `limit` raw rows of `range` (`limit` null: all of them), in range order. */
  page(range: KeyRange, limit: number | null): [string, Uint8Array][] {
    const { sql, params } = rangeQuery(range);
    const rows = this.#db.statement(sql).all(...params, limit ?? -1);
    return rows.map((row) => [String(row.key), blob(row.value)]);
  }

  /** The whole `range` as a Map, in range order. */
  list(range: KeyRange): Map<string, unknown> {
    const result = new Map<string, unknown>();
    for (const [key, bytes] of this.page(range, range.limit)) result.set(key, decodeValue(bytes));
    return result;
  }
}

function blob(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  throw new TypeError("Corrupt storage row: value is not a BLOB");
}

/** UTF-8 byte length without allocating (lone surrogates count as U+FFFD, 3 bytes). */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && isLowSurrogate(text.charCodeAt(i + 1))) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
