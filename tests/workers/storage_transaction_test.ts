import assert from "node:assert/strict";
import type { DurableObjectTransaction } from "../../workers/storage_transaction.ts";
import { openStorage, userObjects } from "./_storage_fixture.ts";

Deno.test("storage.transaction() commits and resolves to the closure's value", async () => {
  await using f = openStorage();
  const result = await f.storage.transaction(async (txn) => {
    await txn.put("t", 1);
    return "foo";
  });
  assert.equal(result, "foo");
  assert.equal(await f.storage.get("t"), 1);
  assert.equal(f.blockCount, 1);
});

Deno.test("storage.transaction() rolls back and rethrows when the closure throws", async () => {
  await using f = openStorage();
  await f.storage.put("t", 3);
  const failure = new Error("txn failure");
  const seen: unknown[] = [];
  await assert.rejects(
    f.storage.transaction(async () => {
      f.storage.put("t", 5);
      seen.push(await f.storage.get("t"));
      throw failure;
    }),
    (error) => error === failure,
  );
  assert.deepEqual(seen, [5]);
  assert.equal(await f.storage.get("t"), 3);
});

Deno.test("storage.transaction() rolls back a synchronous throw too", async () => {
  await using f = openStorage();
  await assert.rejects(
    f.storage.transaction(() => {
      f.storage.kv.put("x", 1);
      throw new TypeError("sync");
    }),
    TypeError,
  );
  assert.equal(f.storage.kv.get("x"), undefined);
});

Deno.test("txn.rollback() discards writes, may repeat, and the transaction resolves", async () => {
  await using f = openStorage();
  await f.storage.put("t", 3);
  const result = await f.storage.transaction(async (txn) => {
    f.storage.put("t", 4);
    txn.rollback();
    txn.rollback();
    assert.equal(await f.storage.get("t"), 3);
    return "done";
  });
  assert.equal(result, "done");
  assert.equal(await f.storage.get("t"), 3);
});

Deno.test("txn operations after rollback() throw", async () => {
  await using f = openStorage();
  const messages: string[] = [];
  await f.storage.transaction((txn) => {
    txn.rollback();
    for (const op of [() => txn.put("x", 1), () => txn.get("x"), () => txn.list()]) {
      try {
        op();
      } catch (error) {
        messages.push(error instanceof Error ? error.message : String(error));
      }
    }
    return Promise.resolve();
  });
  assert.deepEqual(messages, [
    "Cannot put() on rolled back transaction",
    "Cannot get() on rolled back transaction",
    "Cannot list() on rolled back transaction",
  ]);
  assert.equal(await f.storage.get("x"), undefined);
});

Deno.test("txn used after the closure committed throws", async () => {
  await using f = openStorage();
  let escaped: DurableObjectTransaction | undefined;
  await f.storage.transaction((txn) => {
    escaped = txn;
    return Promise.resolve();
  });
  assert.ok(escaped);
  const txn = escaped;
  assert.throws(() => txn.put("x", 1), {
    message: "Cannot call put() on transaction that has already committed: " +
      "did you move `txn` outside of the closure?",
  });
  assert.throws(() => txn.getAlarm(), /Cannot call getAlarm\(\) on transaction that/);
  assert.throws(() => txn.rollback(), /Cannot call rollback\(\) on transaction that/);
});

Deno.test("storage.deleteAll() inside a transaction throws", async () => {
  await using f = openStorage();
  await f.storage.put("k", 1);
  await f.storage.transaction((txn) => {
    assert.throws(() => f.storage.deleteAll(), {
      name: "Error",
      message: "Cannot call deleteAll() within a transaction",
    });
    assert.throws(() => txn.deleteAll(), {
      message: "Cannot call deleteAll() within a transaction",
    });
    return Promise.resolve();
  });
  assert.equal(await f.storage.get("k"), 1);
  await f.storage.deleteAll();
  assert.equal(await f.storage.get("k"), undefined);
});

Deno.test("nested storage.transaction(): an outer rollback undoes inner writes", async () => {
  await using f = openStorage();
  await f.storage.transaction(async (outer) => {
    await outer.put("a", 1);
    await f.storage.transaction(async (inner) => {
      await inner.put("b", 2);
    });
    assert.equal(await outer.get("b"), 2);
    outer.rollback();
  });
  assert.deepEqual(await f.storage.get(["a", "b"]), new Map());
  await f.storage.transaction(async () => {
    await f.storage.put("c", 3);
    await assert.rejects(
      f.storage.transaction(async () => {
        await f.storage.put("d", 4);
        throw new Error("inner");
      }),
      /inner/,
    );
  });
  assert.deepEqual([...await f.storage.list()], [["c", 3]]);
});

Deno.test("storage.transaction() keeps writes uncommitted until it ends", async () => {
  await using f = openStorage();
  await f.storage.transaction(async () => {
    await f.storage.put("k", 1);
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(f.db.dirty, true);
    await f.storage.sync();
    assert.equal(f.db.dirty, true);
  });
  await f.storage.sync();
  assert.equal(f.db.dirty, false);
  assert.equal(await f.storage.get("k"), 1);
});

Deno.test("storage.transactionSync() returns the callback's value and keeps its DDL", async () => {
  await using f = openStorage();
  const result = f.storage.transactionSync(() => {
    f.db.db.exec("CREATE TABLE IF NOT EXISTS should_succeed (v)");
    return "some data";
  });
  assert.equal(result, "some data");
  assert.deepEqual(userObjects(f.db), ["should_succeed"]);
});

Deno.test("storage.transactionSync() rolls back DDL and KV writes when it throws", async () => {
  await using f = openStorage();
  assert.throws(
    () =>
      f.storage.transactionSync(() => {
        f.db.db.exec("CREATE TABLE should_be_rolled_back (v)");
        f.storage.kv.put("k", 1);
        f.db.db.exec("SELECT * FROM misspelled_table_name");
      }),
    /no such table: misspelled_table_name/,
  );
  assert.deepEqual(userObjects(f.db), []);
  assert.equal(f.storage.kv.get("k"), undefined);
});

Deno.test("nested storage.transactionSync(): an inner throw undoes only the inner level", async () => {
  await using f = openStorage();
  f.storage.transactionSync(() => {
    f.storage.kv.put("i", 2);
    try {
      f.storage.transactionSync(() => {
        f.storage.kv.put("i", 3);
        throw new Error("foo");
      });
    } catch (error) {
      assert.equal(error instanceof Error && error.message, "foo");
    }
    assert.equal(f.storage.kv.get("i"), 2);
  });
  assert.equal(f.storage.kv.get("i"), 2);
});

Deno.test("a rolled-back transaction restores the alarm and tells the host", async () => {
  await using f = openStorage();
  const first = Date.now() + 60_000;
  await f.storage.setAlarm(first);
  assert.throws(() =>
    f.storage.transactionSync(() => {
      f.storage.setAlarm(first + 1000);
      throw new Error("undo");
    })
  );
  assert.equal(await f.storage.getAlarm(), first);
  assert.deepEqual(f.alarmEvents, [first, first + 1000, first]);
  f.alarmEvents.length = 0;
  await f.storage.transaction(async (txn) => {
    await txn.deleteAlarm();
    txn.rollback();
  });
  assert.equal(await f.storage.getAlarm(), first);
  assert.deepEqual(f.alarmEvents, [null, first]);
});
