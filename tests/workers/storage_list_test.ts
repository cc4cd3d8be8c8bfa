import assert from "node:assert/strict";
import type { DurableObjectStorage } from "../../workers/storage.ts";
import type { ListOptions } from "../../workers/kv_range.ts";
import { prefixSuccessor } from "../../workers/kv_range.ts";
import { openStorage } from "./_storage_fixture.ts";

/** Dataset S: section{1,2,3}key{1,2} → "value11" … "value32". */
async function seed(storage: DurableObjectStorage): Promise<void> {
  for (const s of [1, 2, 3]) {
    for (const k of [1, 2]) await storage.put(`section${s}key${k}`, `value${s}${k}`);
  }
}

/** Keys of `list(options)`, abbreviated: section2key1 → s2k1. */
async function keys(storage: DurableObjectStorage, options?: ListOptions): Promise<string[]> {
  const map = await storage.list(options);
  return [...map.keys()].map((key) => key.replace("section", "s").replace("key", "k"));
}

Deno.test("storage.list() orders keys and applies start, startAfter and end", async () => {
  await using f = openStorage();
  await seed(f.storage);
  const list = await f.storage.list();
  assert.deepEqual([...list.values()], [
    "value11",
    "value12",
    "value21",
    "value22",
    "value31",
    "value32",
  ]);
  assert.deepEqual(await keys(f.storage, { start: "section2key2" }), ["s2k2", "s3k1", "s3k2"]);
  assert.deepEqual(await keys(f.storage, { startAfter: "section2key2" }), ["s3k1", "s3k2"]);
  assert.deepEqual(await keys(f.storage, { end: "section2key1" }), ["s1k1", "s1k2"]);
});

Deno.test("storage.list() applies reverse, limit and prefix", async () => {
  await using f = openStorage();
  await seed(f.storage);
  assert.deepEqual(await keys(f.storage, { reverse: true }), [
    "s3k2",
    "s3k1",
    "s2k2",
    "s2k1",
    "s1k2",
    "s1k1",
  ]);
  assert.deepEqual(await keys(f.storage, { limit: 3 }), ["s1k1", "s1k2", "s2k1"]);
  assert.deepEqual(await keys(f.storage, { prefix: "section2" }), ["s2k1", "s2k2"]);
});

Deno.test("storage.list() combines options; reverse keeps the bounds and takes the last N", async () => {
  await using f = openStorage();
  await seed(f.storage);
  assert.deepEqual(
    await keys(f.storage, { start: "section2", prefix: "section", limit: 2, reverse: true }),
    ["s3k2", "s3k1"],
  );
  assert.deepEqual(await keys(f.storage, { startAfter: "section2key1", limit: 2 }), [
    "s2k2",
    "s3k1",
  ]);
  assert.deepEqual(await keys(f.storage, { startAfter: "section2", limit: 2 }), ["s2k1", "s2k2"]);
  assert.deepEqual(await keys(f.storage, { end: "section2key2", reverse: true, limit: 2 }), [
    "s2k1",
    "s1k2",
  ]);
});

Deno.test("storage.list() clamps start and end to the prefix", async () => {
  await using f = openStorage();
  await seed(f.storage);
  const prefix = "section2";
  assert.deepEqual(await keys(f.storage, { prefix, start: "section1" }), ["s2k1", "s2k2"]);
  assert.deepEqual(await keys(f.storage, { prefix, start: "section3" }), []);
  assert.deepEqual(await keys(f.storage, { prefix, end: "section2key2" }), ["s2k1"]);
  assert.deepEqual(await keys(f.storage, { prefix, end: "section9" }), ["s2k1", "s2k2"]);
  assert.deepEqual(await keys(f.storage, { prefix, end: "section1" }), []);
  assert.equal((await keys(f.storage, { prefix: "" })).length, 6);
});

Deno.test("storage.list() returns an empty Map for an empty range", async () => {
  await using f = openStorage();
  await seed(f.storage);
  assert.deepEqual(await keys(f.storage, { start: "section3", end: "section1" }), []);
  assert.deepEqual(await keys(f.storage, { start: "section2", end: "section2" }), []);
  assert.deepEqual(await keys(f.storage, { prefix: "nothing" }), []);
});

Deno.test("storage.list() rejects start with startAfter and a non-positive limit", async () => {
  await using f = openStorage();
  assert.throws(() => f.storage.list({ start: "a", startAfter: "b" }), {
    name: "TypeError",
    message: "list() cannot be called with both start and startAfter values.",
  });
  for (const limit of [0, -1]) {
    assert.throws(() => f.storage.list({ limit }), {
      name: "TypeError",
      message: "List limit must be positive.",
    });
  }
});

Deno.test("storage.list() returns more than 128 keys", async () => {
  await using f = openStorage();
  for (let batch = 0; batch < 3; batch++) {
    const entries: Record<string, number> = {};
    for (let i = batch * 128; i < (batch + 1) * 128; i++) entries[`key${i}`] = i;
    await f.storage.put(entries);
  }
  const list = await f.storage.list();
  assert.equal(list.size, 384);
  for (let i = 0; i < 384; i++) assert.equal(list.get(`key${i}`), i);
});

Deno.test("storage.list() sees writes and deletes that were not awaited", async () => {
  await using f = openStorage();
  await f.storage.put({ a: 1, b: 2, c: 3 });
  f.storage.put("d", 4);
  f.storage.delete("a");
  assert.deepEqual([...(await f.storage.list()).keys()], ["b", "c", "d"]);
});

Deno.test("storage.list() orders and prefixes by UTF-8 bytes, not UTF-16 units", async () => {
  await using f = openStorage();
  await f.storage.put({ "\u{1D655}": 3, "\uFF3A": 2, "Z": 1, "\uFFFFa": 4, "\u{10FFFF}b": 5 });
  assert.deepEqual([...(await f.storage.list()).keys()], [
    "Z",
    "\uFF3A",
    "\uFFFFa",
    "\u{1D655}",
    "\u{10FFFF}b",
  ]);
  assert.deepEqual([...(await f.storage.list({ prefix: "\uFFFF" })).keys()], ["\uFFFFa"]);
  assert.deepEqual([...(await f.storage.list({ prefix: "\u{10FFFF}" })).keys()], [
    "\u{10FFFF}b",
  ]);
});

Deno.test("prefixSuccessor() increments the last code point that can grow", () => {
  assert.equal(prefixSuccessor("ab"), "ac");
  assert.equal(prefixSuccessor("a\uD7FF"), "a\uE000");
  assert.equal(prefixSuccessor("a\u{10FFFF}"), "b");
  assert.equal(prefixSuccessor("\u{10FFFF}"), null);
});

Deno.test("storage.kv follows the sync KV sequence", async () => {
  await using f = openStorage();
  const kv = f.storage.kv;
  assert.equal(kv.get("foo"), undefined);
  assert.equal(kv.put("foo", 123), undefined);
  kv.put("bar", "abc");
  assert.deepEqual([...kv.list()], [["bar", "abc"], ["foo", 123]]);
  assert.deepEqual([...kv.list({ reverse: true })], [["foo", 123], ["bar", "abc"]]);
  kv.put("baz", false);
  const listed = (options: ListOptions) => [...kv.list(options)].map(([key]) => key);
  assert.deepEqual(listed({ prefix: "ba" }), ["bar", "baz"]);
  assert.deepEqual(listed({ limit: 1 }), ["bar"]);
  assert.deepEqual(listed({ limit: 1, reverse: true }), ["foo"]);
  assert.deepEqual(listed({ start: "b", end: "c" }), ["bar", "baz"]);
  assert.deepEqual(listed({ start: "b", end: "baz" }), ["bar"]);
  assert.deepEqual(listed({ startAfter: "bar", end: "c" }), ["baz"]);
  assert.equal(kv.delete("qux"), false);
  assert.equal(kv.delete("bar"), true);
  assert.throws(() => kv.put("x", undefined), TypeError);
});

Deno.test("storage.kv.list() invalidates the previous iterator", async () => {
  await using f = openStorage();
  f.storage.kv.put("a", 1);
  const c1 = f.storage.kv.list();
  const c2 = f.storage.kv.list();
  assert.throws(() => [...c1], {
    name: "Error",
    message: "kv.list() iterator was invalidated because a new call to kv.list() was started. " +
      "Only one kv.list() iterator can exist at a time.",
  });
  assert.deepEqual([...c2], [["a", 1]]);
});

Deno.test("storage.kv.list() pages lazily through long ranges and sees later writes", async () => {
  await using f = openStorage();
  const kv = f.storage.kv;
  for (let i = 0; i < 300; i++) kv.put(`k${String(i).padStart(3, "0")}`, i);
  const seen: number[] = [];
  for (const [key, value] of kv.list()) {
    seen.push(value as number);
    if (key === "k000") kv.put("k299x", -1);
  }
  assert.equal(seen.length, 301);
  assert.equal(seen.at(-1), -1);
  const reversed = [...kv.list({ reverse: true, limit: 200, prefix: "k1" })];
  assert.equal(reversed.length, 100);
  assert.equal(reversed[0]?.[0], "k199");
  assert.equal(reversed.at(-1)?.[0], "k100");
  assert.equal([...kv.list({ limit: 130 })].length, 130);
});

Deno.test("storage.kv and the async API share data", async () => {
  await using f = openStorage();
  f.storage.kv.put("d", new Date(5));
  const d = await f.storage.get("d");
  assert.ok(d instanceof Date);
  assert.equal(d.getTime(), 5);
  await f.storage.put("e", 1);
  assert.equal(f.storage.kv.get("e"), 1);
});
