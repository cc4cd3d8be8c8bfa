/**
 * `ctx.storage.kv`: the synchronous KV API of SQLite-backed objects, over the same `_cf_KV`
 * table as the async API (the two see each other's writes at once).
 *
 * `list()` is lazy: it reads the range in pages, each page starting after the last key
 * returned, so no SQLite statement stays open between calls and writes made while iterating
 * are safe. Only the newest `list()` iterator may be read; older ones throw on their next step.
 */

import type { KvStore } from "./kv_store.ts";
import { type KeyRange, type ListOptions, parseListOptions, rangeAfter } from "./kv_range.ts";
import { decodeValue } from "./value_codec.ts";

const PAGE_SIZE = 128;

/** `ctx.storage.kv`. */
export class SyncKvStorage {
  readonly #kv: KvStore;
  #generation = 0;

  constructor(kv: KvStore) {
    this.#kv = kv;
  }

  /** The value under `key`, or undefined. */
  get(key: unknown): unknown {
    return this.#kv.get(this.#kv.key(key));
  }

  /** Stores `value` under `key`. */
  put(key: unknown, value: unknown): void {
    const text = this.#kv.key(key);
    if (value === undefined) throw new TypeError("put() called with undefined value.");
    this.#kv.put(text, this.#kv.encode(value));
  }

  /** Deletes `key`; true when it existed. */
  delete(key: unknown): boolean {
    return this.#kv.delete(this.#kv.key(key));
  }

  /** Iterates `[key, value]` pairs; same options as `storage.list()`. */
  list(options?: ListOptions): Generator<[string, unknown], void, undefined> {
    const range = parseListOptions(options);
    return this.#iterate(range, ++this.#generation);
  }

  *#iterate(range: KeyRange, generation: number): Generator<[string, unknown], void, undefined> {
    let remaining = range.limit ?? Infinity;
    let current = range;
    while (remaining > 0) {
      this.#checkCurrent(generation);
      const rows = this.#kv.page(current, Math.min(remaining, PAGE_SIZE));
      for (const [key, bytes] of rows) {
        yield [key, decodeValue(bytes)];
        this.#checkCurrent(generation);
      }
      const last = rows.at(-1);
      if (last === undefined || rows.length < Math.min(remaining, PAGE_SIZE)) return;
      remaining -= rows.length;
      current = rangeAfter(current, last[0]);
    }
  }

  #checkCurrent(generation: number): void {
    if (generation !== this.#generation) {
      throw new Error(
        "kv.list() iterator was invalidated because a new call to kv.list() was started. " +
          "Only one kv.list() iterator can exist at a time.",
      );
    }
  }
}
