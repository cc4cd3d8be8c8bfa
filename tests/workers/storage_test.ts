import assert from "node:assert/strict";
import { openStorage, userObjects } from "./_storage_fixture.ts";

Deno.test("storage.get() sees an un-awaited put and then the overwrite", async () => {
  await using f = openStorage();
  const p = f.storage.put("k", "v1");
  const a = await f.storage.get("k");
  await f.storage.put("k", "v2");
  assert.equal(await p, undefined);
  assert.equal(a, "v1");
  assert.equal(await f.storage.get("k"), "v2");
  assert.equal(await f.storage.get("nope"), undefined);
});

Deno.test("storage methods accept empty inputs", async () => {
  await using f = openStorage();
  assert.deepEqual(await f.storage.get([]), new Map());
  assert.equal(await f.storage.delete([]), 0);
  assert.equal(await f.storage.put({}), undefined);
  assert.deepEqual(await f.storage.list(), new Map());
});

Deno.test("storage.delete() returns whether one key existed, or how many keys existed", async () => {
  await using f = openStorage();
  await f.storage.put("a", 1);
  assert.equal(await f.storage.delete("a"), true);
  assert.equal(await f.storage.delete("a"), false);
  assert.equal(await f.storage.get("a"), undefined);
  await f.storage.put({ a: 1, b: 2 });
  assert.equal(await f.storage.delete(["a", "b", "x"]), 2);
  assert.deepEqual(await f.storage.list(), new Map());
});

Deno.test("storage.delete() sees writes that were not awaited", async () => {
  await using f = openStorage();
  f.storage.put("k", 1);
  assert.equal(await f.storage.delete("k"), true);
  await f.storage.put("k", 1);
  f.storage.delete("k");
  assert.equal(await f.storage.delete("k"), false);
});

Deno.test("storage.put() rejects undefined but put(entries) skips undefined values", async () => {
  await using f = openStorage();
  assert.throws(() => f.storage.put("k", undefined), {
    name: "TypeError",
    message: "put() called with undefined value.",
  });
  assert.equal(await f.storage.get("k"), undefined);
  await f.storage.put("b", 0);
  await f.storage.put({ a: 1, b: undefined, c: 2 });
  assert.deepEqual([...await f.storage.list()], [["a", 1], ["b", 0], ["c", 2]]);
});

Deno.test("storage converts non-string keys to strings", async () => {
  await using f = openStorage();
  await f.storage.put(1 as unknown as string, "one");
  assert.equal(await f.storage.get("1"), "one");
  assert.equal(await f.storage.get(1 as unknown as string), "one");
  assert.deepEqual(await f.storage.get([1, 2] as unknown as string[]), new Map([["1", "one"]]));
});

Deno.test("storage.get(keys) returns only existing keys sorted in UTF-8 order", async () => {
  await using f = openStorage();
  await f.storage.put({ "\u{1D655}": 3, "Z": 1, "\uFF3A": 2, "a": 0 });
  const map = await f.storage.get(["\u{1D655}", "missing", "\uFF3A", "Z", "Z"]);
  assert.deepEqual([...map], [["Z", 1], ["\uFF3A", 2], ["\u{1D655}", 3]]);
});

Deno.test("storage accepts keys far beyond the legacy 2048-byte limit", async () => {
  await using f = openStorage();
  await f.storage.put("x".repeat(2049), 1);
  await f.storage.put("y".repeat(10000), 2);
  assert.equal(await f.storage.get("x".repeat(2049)), 1);
  assert.equal(await f.storage.get("y".repeat(10000)), 2);
});

Deno.test("storage.put() enforces the key size limit in UTF-8 bytes and stores nothing", async () => {
  await using f = openStorage({ maxKeyBytes: 2048 });
  await f.storage.put("x".repeat(2048), 1);
  assert.throws(() => f.storage.put("x".repeat(2049), 1), {
    name: "RangeError",
    message: "Keys cannot be larger than 2048 bytes. A key of size 2049 was provided.",
  });
  assert.throws(() => f.storage.put("\u00e9".repeat(1025), 1), {
    name: "RangeError",
    message: "Keys cannot be larger than 2048 bytes. A key of size 2050 was provided.",
  });
  assert.throws(() => f.storage.put({ ok: 1, ["k".repeat(3000)]: 2 }));
  assert.deepEqual([...(await f.storage.list()).keys()], ["x".repeat(2048)]);
});

Deno.test("storage.put() enforces the value size limit and stores nothing", async () => {
  await using f = openStorage();
  await f.storage.put("big", new Uint8Array(1_500_000));
  const back = await f.storage.get("big");
  assert.ok(back instanceof Uint8Array);
  assert.equal(back.length, 1_500_000);
  assert.throws(() => f.storage.put("huge", new Uint8Array(2_200_000)), (error) => {
    assert.ok(error instanceof RangeError);
    assert.match(
      error.message,
      /^Values cannot be larger than 2097152 bytes\. A value of size \d+/,
    );
    return true;
  });
  assert.equal(await f.storage.get("huge"), undefined);
  assert.throws(() => f.storage.put({ small: 1, huge: new Uint8Array(2_200_000) }), RangeError);
  assert.equal(await f.storage.get("small"), undefined);
});

Deno.test("storage.put() throws DataCloneError synchronously for uncloneable values", async () => {
  await using f = openStorage();
  assert.throws(() => f.storage.put("f", () => 1), { name: "DataCloneError" });
  assert.throws(() => f.storage.put("s", { s: Symbol("x") }), { name: "DataCloneError" });
  assert.throws(() => f.storage.put({ ok: 1, bad: () => 1 }), { name: "DataCloneError" });
  assert.deepEqual(await f.storage.list(), new Map());
});

Deno.test("storage.put() serializes at call time and get() returns a fresh copy", async () => {
  await using f = openStorage();
  const value = { n: 1, list: [1] };
  const done = f.storage.put("v", value);
  value.n = 2;
  value.list.push(2);
  await done;
  const first = await f.storage.get("v");
  assert.deepEqual(first, { n: 1, list: [1] });
  assert.notEqual(await f.storage.get("v"), first);
});

Deno.test("storage options are accepted and ignored, and sync() resolves to undefined", async () => {
  await using f = openStorage();
  const read = { allowConcurrency: true, noCache: true };
  const write = { allowUnconfirmed: true, noCache: true };
  assert.equal(await f.storage.sync(), undefined);
  f.storage.put("k", "v1", write);
  assert.equal(await f.storage.get("k", read), "v1");
  assert.equal(f.db.dirty, true);
  assert.equal(await f.storage.sync(), undefined);
  assert.equal(f.db.dirty, false);
  assert.equal(await f.storage.delete("k", write), true);
  assert.equal(await f.storage.delete("k", write), false);
  assert.deepEqual(await f.storage.list({ ...read, unknownOption: 1 } as object), new Map());
});

Deno.test("storage round-trips structured-clone value types", async () => {
  await using f = openStorage();
  const sparse = [1, , 3];
  await f.storage.put("v", {
    date: new Date(1000),
    map: new Map([[1, { a: 1 }]]),
    set: new Set(["a", "b", "c"]),
    regexp: /ab+c/gi,
    big: 123n,
    u8: new Uint8Array([1, 2, 3]),
    f64: new Float64Array([1.5]),
    i16: new Int16Array([-1]),
    view: new DataView(new ArrayBuffer(4)),
    buffer: new ArrayBuffer(8),
    sparse,
    nums: [NaN, -0, Infinity, null],
    u: { u: undefined },
    str: new String("s"),
    num: new Number(5),
    bool: true,
  });
  const v = await f.storage.get("v") as Record<string, unknown>;
  assert.ok(v.date instanceof Date && v.date.getTime() === 1000);
  assert.deepEqual(v.map, new Map([[1, { a: 1 }]]));
  assert.deepEqual(v.set, new Set(["a", "b", "c"]));
  assert.ok(v.regexp instanceof RegExp);
  assert.equal(v.regexp.source, "ab+c");
  assert.equal(v.regexp.flags, "gi");
  assert.equal(typeof v.big, "bigint");
  assert.equal(v.big, 123n);
  assert.ok(v.u8 instanceof Uint8Array && v.u8.join() === "1,2,3");
  assert.ok(v.f64 instanceof Float64Array && v.f64[0] === 1.5);
  assert.ok(v.i16 instanceof Int16Array && v.i16[0] === -1);
  assert.ok(v.view instanceof DataView && v.view.byteLength === 4);
  assert.ok(v.buffer instanceof ArrayBuffer && v.buffer.byteLength === 8);
  const arr = v.sparse as unknown[];
  assert.equal(arr.length, 3);
  assert.ok(!(1 in arr));
  const nums = v.nums as unknown[];
  assert.ok(Number.isNaN(nums[0]) && Object.is(nums[1], -0) && nums[2] === Infinity);
  assert.equal(nums[3], null);
  assert.ok("u" in (v.u as object));
  assert.ok(v.str instanceof String && v.str.valueOf() === "s");
  assert.ok(v.num instanceof Number && v.num.valueOf() === 5);
  assert.equal(v.bool, true);
});

Deno.test("storage keeps cycles and shared references", async () => {
  await using f = openStorage();
  const a: Record<string, unknown> = {};
  a.self = a;
  const b: Record<string, unknown> = { x: {} };
  b.y = b.x;
  await f.storage.put({ a, b });
  const a2 = await f.storage.get("a") as Record<string, unknown>;
  const b2 = await f.storage.get("b") as Record<string, unknown>;
  assert.equal(a2.self, a2);
  assert.equal(b2.x, b2.y);
});

Deno.test("storage round-trips Error objects with their type", async () => {
  await using f = openStorage();
  await f.storage.put("e", new RangeError("boom"));
  const e = await f.storage.get("e");
  assert.ok(e instanceof RangeError);
  assert.equal(e.name, "RangeError");
  assert.equal(e.message, "boom");
});

Deno.test("storage flattens class instances to plain objects", async () => {
  await using f = openStorage();
  class P {
    x = 1;
    get y(): number {
      return 2;
    }
    m(): void {}
  }
  await f.storage.put("p", new P());
  const p = await f.storage.get("p") as Record<string, unknown>;
  assert.deepEqual(p, { x: 1 });
  assert.equal(Object.getPrototypeOf(p), Object.prototype);
  assert.ok(!("m" in p) && !("y" in p));
});

Deno.test("storage.deleteAll() wipes KV data and every user SQL object", async () => {
  await using f = openStorage();
  await f.storage.put({ a: 1, b: 2 });
  f.db.db.exec(`
    CREATE TABLE t(x); INSERT INTO t VALUES (1);
    CREATE TABLE parent(id INTEGER PRIMARY KEY);
    CREATE TABLE child(id INTEGER PRIMARY KEY AUTOINCREMENT, p REFERENCES parent(id));
    INSERT INTO parent VALUES (1); INSERT INTO child(p) VALUES (1);
    CREATE INDEX child_p ON child(p);
    CREATE VIEW v AS SELECT * FROM t;
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;
    CREATE VIRTUAL TABLE docs USING fts5(body); INSERT INTO docs VALUES ('hello');
  `);
  await f.storage.deleteAll();
  assert.deepEqual(await f.storage.list(), new Map());
  assert.deepEqual(userObjects(f.db), []);
  const left = f.db.db.prepare("SELECT name FROM sqlite_master WHERE type IN ('index', 'trigger')")
    .all().map((row) => row.name).filter((name) => !String(name).startsWith("sqlite_"));
  assert.deepEqual(left, []);
  await f.storage.sync();
  assert.equal(f.db.dirty, false);
  f.db.db.exec("CREATE TABLE t(x)");
  assert.deepEqual(userObjects(f.db), ["t"]);
});

Deno.test("storage.deleteAll() deletes the alarm and tells the host", async () => {
  await using f = openStorage();
  await f.storage.setAlarm(Date.now() + 600_000);
  await f.storage.put("key", "value");
  f.alarmEvents.length = 0;
  await f.storage.deleteAll();
  assert.deepEqual([await f.storage.get("key"), await f.storage.getAlarm()], [undefined, null]);
  assert.deepEqual(f.alarmEvents, [null]);
  await f.storage.deleteAll();
  assert.deepEqual(f.alarmEvents, [null]);
});

Deno.test("storage writes open the implicit transaction that sync() commits", async () => {
  await using f = openStorage();
  assert.equal(f.db.dirty, false);
  await f.storage.put("k", 1);
  assert.equal(f.db.dirty, true);
  await f.storage.sync();
  assert.equal(f.db.dirty, false);
  await f.storage.delete("k");
  assert.equal(f.db.dirty, true);
  f.db.rollback();
  assert.equal(await f.storage.get("k"), 1);
});

Deno.test("storage.sql is the SQL API it was given and throws when there is none", async () => {
  const sql = { databaseSize: 4096 };
  await using withSql = openStorage({ sql });
  assert.equal(withSql.storage.sql, sql);
  await using without = openStorage();
  assert.throws(() => without.storage.sql, {
    message: "SQL is not enabled for this Durable Object class.",
  });
});

Deno.test("storage point-in-time recovery methods reject as not supported", async () => {
  await using f = openStorage();
  await assert.rejects(f.storage.getCurrentBookmark(), /not supported by dohost/);
  await assert.rejects(f.storage.getBookmarkForTime(Date.now()), /not supported by dohost/);
  await assert.rejects(f.storage.onNextSessionRestoreBookmark("b"), /not supported by dohost/);
});
