/**
 * Conformance cases of sections A–E (`conformance-cases.md`): identity and lifecycle, the
 * async and sync KV APIs, list(), value serialization, and concurrency (gates, coalescing,
 * transactions, abort), all through a real server and the `ConformanceDO` harness class
 * (`tests/fixtures/conformance_do.ts`). Cases marked [SEP] deploy a small class of their own.
 * Case numbers follow the document; each step uses a fresh instance unless it says otherwise.
 */

import assert from "node:assert/strict";
import { fixture, startServer, type TestServer } from "../_helpers.ts";

const U = { $u: 1 };

/** `GET|… /_do/conformance-do/<uid>/<route>`, parsed as JSON, asserting a 200. */
async function call(
  server: TestServer,
  uid: string,
  route: string,
  init?: RequestInit,
): Promise<unknown> {
  const res = await server.fetch(`/_do/conformance-do/${uid}/${route}`, init);
  const text = await res.text();
  assert.equal(res.status, 200, `${route}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** The HTTP status of a route that must fail (its body is drained). */
async function status(server: TestServer, path: string): Promise<number> {
  const res = await server.fetch(path);
  await res.body?.cancel();
  return res.status;
}

function uid(): string {
  return crypto.randomUUID();
}

/** The live instance named `name`, if any. */
function live(server: TestServer, name: string) {
  return [...server.server.deps.instances.live].find((item) => item.target.name === name);
}

/** Polls `check` (no fixed sleep decides the outcome) until it holds or `ms` pass. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Starts `route` and resolves once the host has handed it to the instance's worker (its
 * answer is `response`): a request sent after that is delivered after it.
 */
async function startRoute(
  server: TestServer,
  id: string,
  route: string,
  init?: RequestInit,
): Promise<{ response: Promise<unknown> }> {
  const before = live(server, id)?.host.pending ?? 0;
  const response = call(server, id, route, init);
  await until(`${route} to reach the worker`, () => (live(server, id)?.host.pending ?? 0) > before);
  return { response };
}

async function deploySep(server: TestServer, name: string, code: string): Promise<void> {
  await server.deploy(name, code);
}

Deno.test("conformance A–E on one server", async (t) => {
  await using server = await startServer();
  await server.deploy("conformance-do", await fixture("conformance_do.ts"));
  const get = (id: string, route: string, init?: RequestInit) => call(server, id, route, init);

  // A. Identity, instance and lifecycle

  await t.step("1. one live instance keeps in-memory state between requests", async () => {
    const id = uid();
    assert.deepEqual([await get(id, "mem"), await get(id, "mem"), await get(id, "mem")], [1, 2, 3]);
    assert.equal(await get(uid(), "mem"), 1);
  });

  await t.step("3. ctx.id has the name, a stable 64-hex id and equals itself", async () => {
    const id = uid();
    const first = await get(id, "id") as { name: string; hex: string; eq: boolean };
    assert.equal(first.name, id);
    assert.match(first.hex, /^[0-9a-f]{64}$/);
    assert.equal(first.eq, true);
    assert.deepEqual(await get(id, "id"), first);
    const other = await get(uid(), "id") as { hex: string };
    assert.notEqual(other.hex, first.hex);
  });

  await t.step("4. the constructor runs once per activation", async () => {
    const id = uid();
    const all = await Promise.all(Array.from({ length: 5 }, () => get(id, "inst"))) as {
      inst: string;
      ctor: number;
    }[];
    assert.equal(new Set(all.map((item) => item.inst)).size, 1);
    assert.deepEqual(all.map((item) => item.ctor), [1, 1, 1, 1, 1]);
  });

  await t.step(
    "9. a class without its own constructor gets ctx and env from the base",
    async () => {
      assert.deepEqual(await get(uid(), "wiring"), { ctx: "function", env: "object" });
    },
  );

  await t.step("10. [SEP] a plain class receives (state, env)", async () => {
    await deploySep(
      server,
      "plain-class",
      `export class Plain {
  constructor(state, env) { this.state = state; this.env = env; }
  fetch() { return new Response(this.state.id.name + "|" + typeof this.env); }
}`,
    );
    const res = await server.fetch("/_do/plain-class/who");
    assert.equal(await res.text(), "who|object");
  });

  await t.step("11. [SEP] a class without fetch() answers 500", async () => {
    await deploySep(
      server,
      "no-fetch",
      `import { DurableObject } from "cloudflare:workers";
export class NoFetch extends DurableObject { async alarm() {} }`,
    );
    assert.equal(await status(server, "/_do/no-fetch/x/"), 500);
    assert.equal(await status(server, "/_do/no-fetch/x/"), 500, "and keeps answering 500");
  });

  await t.step("12. ctx.waitUntil work finishes after the response", async () => {
    const id = uid();
    assert.equal(await get(id, "wu?ms=1500"), "ok");
    assert.deepEqual(await get(id, "kv?k=wu"), U, "the response did not wait for the work");
    await until("the waitUntil write", async () => (await get(id, "kv?k=wu")) === 1);
  });

  // B. Async KV API

  await t.step(
    "13. put, get, overwrite and read-your-writes; missing keys are undefined",
    async () => {
      const id = uid();
      assert.deepEqual(await get(id, "case13"), { p: U, a: "v1", b: "v2" });
      assert.deepEqual(await get(id, "kv?k=nope"), U);
    },
  );

  await t.step("15. empty inputs", async () => {
    assert.deepEqual(await get(uid(), "case15"), [[], 0, U, []]);
  });

  await t.step("16. delete() of one key is a boolean, of many a count", async () => {
    assert.deepEqual(await get(uid(), "case16"), [true, false, U]);
    assert.deepEqual(await get(uid(), "case16b"), [2, []]);
  });

  await t.step("17. delete() sees writes that were not awaited", async () => {
    assert.deepEqual(await get(uid(), "case17"), [true, false]);
  });

  await t.step("18. put(key, undefined) is a TypeError; put(entries) skips undefined", async () => {
    assert.deepEqual(await get(uid(), "case18"), {
      err: { name: "TypeError", message: "put() called with undefined value." },
    });
    assert.deepEqual(await get(uid(), "case18b"), [["a", 1], ["b", 0], ["c", 2]]);
  });

  await t.step("20. deleteAll() wipes KV and SQL tables", async () => {
    assert.deepEqual(await get(uid(), "case20"), [[], []]);
  });

  await t.step("22. [SEP] deleteAll() deletes the alarm", async () => {
    await deploySep(
      server,
      "alarm-wipe",
      `import { DurableObject } from "cloudflare:workers";
export class AlarmWipe extends DurableObject {
  async alarm() {}
  async fetch() {
    const s = this.ctx.storage;
    await s.setAlarm(Date.now() + 10 * 60 * 1000);
    const before = (await s.getAlarm()) !== null;
    await s.put("key", "value");
    await s.deleteAll();
    return Response.json([before, (await s.get("key")) ?? "undefined", await s.getAlarm()]);
  }
}`,
    );
    const res = await server.fetch(`/_do/alarm-wipe/${uid()}`);
    assert.deepEqual(await res.json(), [true, "undefined", null]);
  });

  await t.step("23. default limits: keys over 2048 bytes are a RangeError", async () => {
    const tooLong = (size: number) => ({
      err: {
        name: "RangeError",
        message: `Keys cannot be larger than 2048 bytes. A key of size ${size} was provided.`,
      },
    });
    assert.deepEqual(await get(uid(), "case23"), [
      [tooLong(2049), tooLong(10000)],
      tooLong(2049),
      tooLong(10000),
    ]);
  });

  await t.step(
    "24. default limits: values over 131072 bytes are a RangeError and not stored",
    async () => {
      const over = await get(uid(), "big-value?size=131112");
      assert.deepEqual(over, {
        result: {
          err: {
            name: "RangeError",
            message:
              "Values cannot be larger than 131072 bytes. A value of size 131119 was provided.",
          },
        },
        length: null,
      });
    },
  );

  await t.step(
    "26. read/write options change nothing and sync() resolves to undefined",
    async () => {
      assert.deepEqual(await get(uid(), "case26"), [
        { p: U, a: "v1", b: "v2" },
        [true, false, U],
        U,
        U,
        1,
      ]);
    },
  );

  await t.step("27. the sync KV API, and only the newest kv.list() iterator is valid", async () => {
    assert.deepEqual(await get(uid(), "case27"), [
      U,
      [["bar", "abc"], ["foo", 123]],
      [["foo", 123], ["bar", "abc"]],
      ["bar", "baz"],
      ["bar"],
      ["foo"],
      ["bar", "baz"],
      ["bar"],
      ["baz"],
      false,
      true,
      {
        err: {
          name: "Error",
          message: "kv.list() iterator was invalidated because a new call to kv.list() was " +
            "started. Only one kv.list() iterator can exist at a time.",
        },
      },
      ["baz", "foo"],
    ]);
  });

  await t.step("28. the sync and async KV APIs share data", async () => {
    assert.deepEqual(await get(uid(), "case28"), [5, 1]);
  });

  // C. list()

  await t.step(
    "29, 30, 32. list() order, bounds, combinations, prefix clamping and errors",
    async () => {
      const id = uid();
      const list = (opts: Record<string, unknown>) =>
        get(id, `list?opts=${encodeURIComponent(JSON.stringify(opts))}`);
      const k = (...names: string[]) =>
        names.map((name) => name.replace(/^s(\d)k(\d)$/, "section$1key$2"));
      const all = k("s1k1", "s1k2", "s2k1", "s2k2", "s3k1", "s3k2");
      const cases: [Record<string, unknown>, string[]][] = [
        // 29
        [{}, all],
        [{ start: "section2key2" }, k("s2k2", "s3k1", "s3k2")],
        [{ startAfter: "section2key2" }, k("s3k1", "s3k2")],
        [{ end: "section2key1" }, k("s1k1", "s1k2")],
        [{ reverse: true }, [...all].reverse()],
        [{ limit: 3 }, k("s1k1", "s1k2", "s2k1")],
        [{ prefix: "section2" }, k("s2k1", "s2k2")],
        // 30
        [{ start: "section2", prefix: "section", limit: 2, reverse: true }, k("s3k2", "s3k1")],
        [{ startAfter: "section2key1", limit: 2 }, k("s2k2", "s3k1")],
        [{ startAfter: "section2", limit: 2 }, k("s2k1", "s2k2")],
        [{ end: "section2key2", reverse: true, limit: 2 }, k("s2k1", "s1k2")],
        // 32
        [{ prefix: "section2", start: "section1" }, k("s2k1", "s2k2")],
        [{ prefix: "section2", start: "section3" }, []],
        [{ prefix: "section2", end: "section2key2" }, k("s2k1")],
        [{ prefix: "section2", end: "section9" }, k("s2k1", "s2k2")],
        [{ prefix: "section2", end: "section1" }, []],
        [{ prefix: "" }, all],
      ];
      for (const [opts, expected] of cases) {
        assert.deepEqual(await list(opts), expected, JSON.stringify(opts));
      }
      assert.deepEqual(await list({ start: "a", startAfter: "b" }), {
        err: {
          name: "TypeError",
          message: "list() cannot be called with both start and startAfter values.",
        },
      });
      assert.deepEqual(await list({ limit: 0 }), {
        err: { name: "TypeError", message: "List limit must be positive." },
      });
    },
  );

  await t.step("34. list() returns more than 128 entries", async () => {
    assert.deepEqual(await get(uid(), "case34"), [384, true]);
  });

  await t.step("35. list() sees writes that were not awaited", async () => {
    assert.deepEqual(await get(uid(), "case35"), [["b", 2], ["c", 3], ["d", 4]]);
  });

  // D. Value serialization

  await t.step(
    "36. structured-clone round trip of many value types, cycles and shared refs",
    async () => {
      const checks = await get(uid(), "case36") as boolean[];
      assert.equal(checks.length, 14);
      assert.deepEqual(checks, checks.map(() => true), JSON.stringify(checks));
      const more = await get(uid(), "case36b") as boolean[];
      assert.deepEqual(more, [true, true, true, true, true, true, true]);
    },
  );

  await t.step("37. errors keep their class, name and message", async () => {
    assert.deepEqual(await get(uid(), "case37"), [true, "RangeError", "boom"]);
  });

  await t.step("38. class instances are flattened to plain objects", async () => {
    assert.deepEqual(await get(uid(), "case38"), [true, ["x"]]);
  });

  // E. Concurrency

  await t.step("40. 50 concurrent read-modify-write requests lose no update", async () => {
    const id = uid();
    const results = await Promise.all(
      Array.from({ length: 50 }, () => get(id, "incr", { method: "POST" })),
    ) as number[];
    assert.deepEqual(
      [...results].sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    assert.equal(await get(id, "kv?k=n"), 50);
  });

  await t.step("42. requests interleave at non-storage awaits", async () => {
    const id = uid();
    await get(id, "mem");
    const order: string[] = [];
    const slow = (await startRoute(server, id, "slow")).response
      .then((value) => (order.push("slow"), value));
    const fast = get(id, "fast").then((value) => (order.push("fast"), value));
    assert.deepEqual(await Promise.all([slow, fast]), ["B", "ok"]);
    assert.deepEqual(order, ["fast", "slow"]);
  });

  await t.step("44. transaction() commits and returns the closure's value", async () => {
    assert.deepEqual(await get(uid(), "txn"), ["foo", 1]);
  });

  await t.step("45. a throwing transaction rolls back without resetting the object", async () => {
    const id = uid();
    const before = await get(id, "inst") as { inst: string };
    assert.deepEqual(await get(id, "txn-fail"), ["txn failure", 3, true]);
    assert.equal((await get(id, "inst") as { inst: string }).inst, before.inst);
    assert.deepEqual(await get(uid(), "txn-rollback"), ["rolled back", 3]);
  });

  await t.step(
    "47. a rolled-back txn refuses use; deleteAll() is refused inside a transaction",
    async () => {
      const [afterRollback, deleteAll, x] = await get(uid(), "case47") as [
        { err: { message: string } },
        { err: { name: string; message: string } },
        unknown,
      ];
      assert.match(afterRollback.err.message, /on rolled back transaction/);
      assert.deepEqual(deleteAll, {
        err: { name: "Error", message: "Cannot call deleteAll() within a transaction" },
      });
      assert.deepEqual(x, U);
    },
  );

  await t.step("48. [WD-ONLY] a transaction holds back other events until it ends", async () => {
    const id = uid();
    await get(id, "mem");
    const slow = await startRoute(server, id, "txn-slow", { method: "POST" });
    assert.equal(await get(id, "read?k=x"), "done");
    assert.equal(await slow.response, "ok");
  });

  await t.step("49. transactionSync() commits, and a failure rolls back its DDL", async () => {
    const [ok, failed, tables] = await get(uid(), "case49") as [
      string,
      { err: { message: string } },
      { name: string }[],
    ];
    assert.equal(ok, "some data");
    assert.match(failed.err.message, /no such table: misspelled_table_name/);
    assert.deepEqual(tables, [{ name: "should_succeed" }]);
  });

  await t.step("50. a nested transactionSync() failure undoes only the inner level", async () => {
    assert.equal(await get(uid(), "case50"), 2);
  });

  await t.step("52. ctx.abort() discards the turn's writes and resets the object", async () => {
    const id = uid();
    assert.equal(await get(id, "kv?k=counter&v=2", { method: "PUT" }), "ok");
    const before = await get(id, "inst") as { inst: string; ctor: number };
    assert.equal(await status(server, `/_do/conformance-do/${id}/break`), 500);
    assert.equal(await get(id, "kv?k=counter"), 2);
    const after = await get(id, "inst") as { inst: string; ctor: number };
    assert.notEqual(after.inst, before.inst);
    assert.equal(after.ctor, before.ctor + 1);
  });

  await t.step("54. KV and SQL writes of one turn are discarded together by abort()", async () => {
    const id = uid();
    assert.equal(await status(server, `/_do/conformance-do/${id}/case54`), 500);
    assert.deepEqual(await get(id, "case54-check"), [0, U]);
  });
});

Deno.test("conformance 3, 7: ids and storage survive a restart", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "dohost-test-" });
  try {
    const id = uid();
    let hex: unknown;
    {
      await using server = await startServer({ dataDir });
      await server.deploy("conformance-do", await fixture("conformance_do.ts"));
      hex = await call(server, id, "id");
      assert.equal(await call(server, id, "kv?k=a&v=1", { method: "PUT" }), "ok");
    }
    await using again = await startServer({ dataDir });
    assert.deepEqual(await call(again, id, "id"), hex);
    assert.equal(await call(again, id, "kv?k=a"), 1);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("conformance 5, 6: idle eviction resets memory, keeps storage, and waits for timers", async (t) => {
  await using server = await startServer({ flags: ["--idle-timeout", "1"] });
  await server.deploy("conformance-do", await fixture("conformance_do.ts"));

  await t.step(
    "5. an idle instance is evicted; the next request constructs a new one",
    async () => {
      const id = uid();
      const first = await call(server, id, "inst") as { inst: string; ctor: number };
      assert.equal(await call(server, id, "mem"), 1);
      assert.equal(await call(server, id, "kv?k=x&v=1", { method: "PUT" }), "ok");
      await until("idle eviction", () => live(server, id) === undefined);
      const second = await call(server, id, "inst") as { inst: string; ctor: number; mem: number };
      assert.notEqual(second.inst, first.inst);
      assert.equal(second.ctor, 2);
      assert.equal(second.mem, 0);
      assert.equal(await call(server, id, "kv?k=x"), 1);
    },
  );

  await t.step("6. a pending timer delays eviction until it has fired", async () => {
    const id = uid();
    const first = await call(server, id, "inst") as { inst: string };
    assert.equal(await call(server, id, "timer?ms=3000"), "ok");
    await until("idle eviction", () => live(server, id) === undefined);
    // Had the instance been evicted before its timer fired, nothing would have written this.
    const after = await call(server, id, "inst") as { inst: string };
    assert.notEqual(after.inst, first.inst);
    assert.equal(await call(server, id, "kv?k=ticked"), first.inst);
  });
});

Deno.test("conformance 23, 24: raised limits give SQLite-backed key and value sizes", async () => {
  await using server = await startServer({
    flags: ["--max-key-bytes", "2097152", "--max-value-bytes", "2097152"],
  });
  await server.deploy("conformance-do", await fixture("conformance_do.ts"));
  assert.deepEqual(await call(server, uid(), "case23"), [[U, U], 1, 2]);
  assert.deepEqual(await call(server, uid(), "big-value?size=1500000"), {
    result: U,
    length: 1500000,
  });
  const refused = await call(server, uid(), "big-value?size=2200000") as {
    result: { err: { name: string; message: string } };
    length: unknown;
  };
  assert.equal(refused.result.err.name, "RangeError");
  assert.match(refused.result.err.message, /^Values cannot be larger than 2097152 bytes\./);
  assert.equal(refused.length, null, "the refused value was not stored");
});

Deno.test("conformance 24: a value of exactly 131072 bytes fits the default limit", async () => {
  await using server = await startServer();
  await server.deploy("conformance-do", await fixture("conformance_do.ts"));
  // The limit applies to the value, not to the few bytes of serialization header around it.
  assert.deepEqual(await call(server, uid(), "big-value?size=131072"), {
    result: U,
    length: 131072,
  });
});
