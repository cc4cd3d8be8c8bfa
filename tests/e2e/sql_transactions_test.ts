/**
 * Conformance sections E (input/output gates, coalescing, transactions, abort) and G (SQL
 * API), run through real instance workers. Case numbers refer to conformance-cases.md.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { objectIdFromName } from "../../workers/protocol.ts";
import { fixture, getJson, startServer, type TestServer } from "../_helpers.ts";

const B = "/_do/sql-txn";

/** The cases, each on its own instance; they share one server (see the end of the file). */
const CASES: [string, (server: TestServer) => Promise<void>][] = [];

async function body(server: TestServer, path: string, init?: RequestInit): Promise<unknown> {
  const { status, body } = await getJson(server, path, init);
  assert.equal(status, 200, `${path}: ${JSON.stringify(body)}`);
  return body;
}

function err(message: string, name = "Error") {
  return { err: { name, message } };
}

CASES.push(["E40: concurrent get/put increments lose no update", async (server) => {
  const values = await Promise.all(
    Array.from({ length: 50 }, () => body(server, `${B}/e40/incr`, { method: "POST" })),
  );
  assert.deepEqual(
    (values as number[]).sort((a, b) => a - b),
    Array.from({ length: 50 }, (_, i) => i + 1),
  );
  assert.equal(await body(server, `${B}/e40/kv?k=n`), 50);
}]);

CASES.push(["E42: requests interleave at non-storage awaits", async (server) => {
  let slowDone = false;
  const slow = body(server, `${B}/e42/slow`).finally(() => slowDone = true);
  let fastBeforeSlow = 0;
  while (!slowDone) {
    assert.equal(await body(server, `${B}/e42/fast`), "ok");
    if (!slowDone) fastBeforeSlow++;
  }
  assert.equal(await slow, "B");
  assert.ok(fastBeforeSlow > 0, "fast requests completed while slow was sleeping");
}]);

CASES.push(["E44: transaction() commits and resolves to the closure's value", async (server) => {
  assert.deepEqual(await body(server, `${B}/e44/txn`), ["foo", 1]);
}]);

CASES.push([
  "E45: a throwing transaction rolls back, rethrows, and does not reset the object",
  async (server) => {
    const inst = await body(server, `${B}/e45/inst`);
    assert.deepEqual(await body(server, `${B}/e45/txn-fail`), ["txn failure", 3, true]);
    assert.deepEqual(await body(server, `${B}/e45/txn-rollback`), ["resolved", 3]);
    assert.equal(
      (await body(server, `${B}/e45/inst`) as { inst: string }).inst,
      (inst as { inst: string }).inst,
    );
  },
]);

CASES.push([
  "E47: txn after rollback() throws, and deleteAll() is refused inside a transaction",
  async (server) => {
    const message = await body(server, `${B}/e47/txn-after-rollback`) as string;
    assert.match(message, /on rolled back transaction/);
    assert.deepEqual(
      await body(server, `${B}/e47/txn-deleteall`),
      err("Cannot call deleteAll() within a transaction"),
    );
  },
]);

CASES.push(["E48: a transaction holds back other events until it ends", async (server) => {
  let txnDone = false;
  const txn = body(server, `${B}/e48/txn-slow`).finally(() => txnDone = true);
  const seen: unknown[] = [];
  let doneWhileRunning = false;
  while (!txnDone) {
    const value = await body(server, `${B}/e48/read?k=x`);
    seen.push(value);
    // Sent before the transaction ended, answered with its final value: it was held back.
    if (value === "done") doneWhileRunning = true;
  }
  assert.equal(await txn, "ok");
  assert.ok(!seen.includes("in") && !seen.includes("old"), JSON.stringify(seen));
  assert.ok(doneWhileRunning, JSON.stringify(seen));
  assert.equal(await body(server, `${B}/e48/read?k=x`), "done");
}]);

CASES.push([
  "E49/E50: transactionSync commits, rolls back DDL on a throw, and nests",
  async (server) => {
    assert.deepEqual(await body(server, `${B}/e49/txn-sync`), ["some data", 1]);
    const [error, count] = await body(server, `${B}/e49/txn-sync-fail`) as [
      { err: { message: string } },
      number,
    ];
    assert.match(error.err.message, /no such table: misspelled_table_name/);
    assert.equal(count, 0);
    assert.equal(await body(server, `${B}/e50/txn-sync-nested`), 2);
  },
]);

CASES.push([
  "E52: ctx.abort() fails the request, discards the turn's writes, resets the object",
  async (server) => {
    await body(server, `${B}/e52/kv?k=counter&v=2`, { method: "PUT" });
    const before = await body(server, `${B}/e52/inst`) as { inst: string };
    const res = await server.fetch(`${B}/e52/break`);
    assert.equal(res.status, 500);
    assert.equal(await res.text(), "Internal Server Error");
    assert.equal(res.headers.get("x-dohost-error"), "OBJECT_RESET");
    assert.equal(await body(server, `${B}/e52/kv?k=counter`), 2);
    const after = await body(server, `${B}/e52/inst`) as { inst: string };
    assert.notEqual(after.inst, before.inst);
  },
]);

CASES.push([
  "E54: KV and SQL writes share one implicit transaction (abort drops both)",
  async (server) => {
    const res = await server.fetch(`${B}/e54/break-mixed?v=row`);
    assert.equal(res.status, 500);
    await res.body?.cancel();
    assert.deepEqual(await body(server, `${B}/e54/log`), []);
    assert.deepEqual(await body(server, `${B}/e54/kv?k=k`), { $u: 1 });
  },
]);

CASES.push([
  "E56: an acknowledged write is committed to disk before the response",
  async (server) => {
    assert.equal(await body(server, `${B}/e56/ack?v=first`), "ok");
    const idHex = objectIdFromName("app_default/sql-txn", "e56");
    const path = join(server.dataDir, "instances", "app_default", "sql-txn", `${idHex}.sqlite`);
    const reader = new DatabaseSync(path, { readOnly: true });
    try {
      assert.deepEqual(reader.prepare("SELECT v FROM log").all().map((row) => row.v), ["first"]);
    } finally {
      reader.close();
    }
  },
]);

CASES.push(["deleteAll() empties KV, drops user tables and deletes the alarm", async (server) => {
  assert.deepEqual(await body(server, `${B}/da/delete-all`), {
    list: [],
    alarm: null,
    tables: [],
  });
}]);

CASES.push(["G64/G65: scalars, raw rows, blobs and bindings", async (server) => {
  assert.deepEqual(await body(server, `${B}/g64/scalars`), [
    [{ "123": 123 }],
    [[123]],
    [{ "'hello'": "hello" }],
    [255],
    { "?": 456 },
    { "? + ?": 579 },
    err("Wrong number of parameter bindings for SQL query."),
  ]);
  assert.deepEqual(await body(server, `${B}/g65/blobs`), [
    "ArrayBuffer(12)",
    "ArrayBuffer(10)",
    null,
    null,
  ]);
}]);

CASES.push(["G66: the cursor's next() protocol and one()", async (server) => {
  assert.deepEqual(await body(server, `${B}/g66/next`), {
    steps: [
      { done: false, value: { col: 1 } },
      { done: false, value: { col: "foo" } },
      { done: false, value: { col: 3 } },
      { done: true },
    ],
    lastHasValue: false,
    row: { foo: 123, bar: "abc" },
    rest: [],
    many: err("Expected exactly one result from SQL query, but got multiple results."),
    none: err("Expected exactly one result from SQL query, but got no results."),
  });
}]);

CASES.push(["G66: next(), raw() and toArray() share one cursor position", async (server) => {
  assert.deepEqual(await body(server, `${B}/cur/cursor-iterate`), {
    first: { n: 0 },
    second: [1],
    rest: [{ n: 2 }, { n: 3 }, { n: 4 }],
    names: ["n"],
    read: 5,
  });
}]);

CASES.push([
  "G68: duplicate column names collapse in row objects but not in raw()",
  async (server) => {
    assert.deepEqual(await body(server, `${B}/g68/dup-columns`), {
      keys: [5, 5, 5, 5],
      c: [7, 1, 7, 1],
      columnNames: ["a", "b", "c", "c", "d", "e"],
      raw: [[1, 2, 3, 7, 8, 9], [1, 2, 3, 1, 2, 3], [4, 5, 6, 7, 8, 9], [4, 5, 6, 1, 2, 3]],
      update: [],
    });
  },
]);

CASES.push(["G69: rowsRead and rowsWritten", async (server) => {
  assert.deepEqual(await body(server, `${B}/g69/io-stats`), {
    insert: 1,
    read: 2,
    filteredWritten: 0,
    again: [1, 1],
  });
}]);

CASES.push(["G71: empty SQL, comment-only SQL and syntax errors", async (server) => {
  const results = await body(server, `${B}/g71/empty-sql`) as { err: { message: string } }[];
  for (const result of results.slice(0, 3)) {
    assert.match(result.err.message, /SQL code did not contain a statement/);
  }
  assert.match(results[3]?.err.message ?? "", /syntax error at offset 7/);
  assert.match(results[4]?.err.message ?? "", /syntax error at offset 8/);
}]);

CASES.push([
  "G73/G74: restricted functions and PRAGMAs, allowed extensions, compound limit",
  async (server) => {
    const result = await body(server, `${B}/g73/functions`) as Record<string, unknown>;
    const message = (key: string) => (result[key] as { err: { message: string } }).err.message;
    assert.match(message("version"), /not authorized to use function: sqlite_version/);
    assert.match(message("pageSize"), /not authorized/);
    assert.match(message("temp"), /not authorized/);
    assert.deepEqual(result.tableInfo, ["x", "y"]);
    assert.deepEqual(result.quickCheck, [{ quick_check: "ok" }]);
    assert.equal(result.cos, 1);
    assert.equal(result.json, '[4,5,{"f":7}]');
    assert.match(String(result.date), /^\d{4}-\d{2}-\d{2}$/);
    assert.equal(result.fts, 1);
    const [five, six] = await body(server, `${B}/g74/compound`) as [
      number,
      { err: { message: string } },
    ];
    assert.equal(five, 5);
    assert.match(six.err.message, /too many terms in compound SELECT/);
  },
]);

CASES.push(["G75/G77: number types and databaseSize", async (server) => {
  assert.deepEqual(await body(server, `${B}/g75/numbers`), [true, "number", 1.5, null]);
  const [fresh, added, afterDrop] = await body(server, `${B}/g77/db-size`) as number[];
  assert.ok(fresh !== undefined && fresh > 0 && fresh % 4096 === 0, `fresh size ${fresh}`);
  assert.equal(added, 4096);
  assert.equal(afterDrop, 0);
}]);

Deno.test("conformance E and G through real instance workers", async (t) => {
  await using server = await startServer();
  await server.deploy("sql-txn", await fixture("sql_txn_do.ts"));
  for (const [name, run] of CASES) await t.step(name, () => run(server));
});
