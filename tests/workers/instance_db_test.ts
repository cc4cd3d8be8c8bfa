/**
 * The output gate's commit: a response waits for the commit of the writes before it, and
 * responses of events that follow each other closely share one commit.
 */

import assert from "node:assert/strict";
import { InstanceDb } from "../../workers/instance_db.ts";

/** An in-memory database whose "events waiting" answer the test sets. */
function openDb(): { db: InstanceDb; waiting: { value: boolean } } {
  const waiting = { value: false };
  const db = new InstanceDb(":memory:", {
    onFatal: (error) => {
      throw error;
    },
    eventsWaiting: () => waiting.value,
  });
  return { db, waiting };
}

function write(db: InstanceDb, key: string): void {
  db.beginWrite();
  db.statement("INSERT OR REPLACE INTO _cf_KV (key, value) VALUES (?, ?)").run(key, "v");
}

/** Whether `promise` has settled (after the microtasks queued so far). */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(() => done = true, () => done = true);
  await Promise.resolve();
  await Promise.resolve();
  return done;
}

Deno.test("flush() commits at once when no other event waits to start", async () => {
  const { db } = openDb();
  write(db, "a");
  assert.equal(db.db.isTransaction, true);
  await db.flush();
  assert.equal(db.db.isTransaction, false);
  db.close();
});

Deno.test("responses of queued events share one commit, made by the last one's flush", async () => {
  const { db, waiting } = openDb();
  waiting.value = true;
  write(db, "a");
  const first = db.flush();
  assert.equal(await settled(first), false, "held until the writes are committed");
  assert.equal(db.db.isTransaction, true);
  write(db, "b");
  const second = db.flush();
  assert.equal(await settled(second), false);
  waiting.value = false;
  write(db, "c");
  await db.flush();
  assert.equal(db.db.isTransaction, false);
  assert.equal(await settled(first), true);
  assert.equal(await settled(second), true);
  await Promise.all([first, second]);
  const rows = db.db.prepare("SELECT key FROM _cf_KV ORDER BY key").all().map((row) => row.key);
  assert.deepEqual(rows, ["a", "b", "c"]);
  db.close();
});

Deno.test("a held response is released by the turn's commit when no later event flushes", async () => {
  const { db, waiting } = openDb();
  // Object code may replace the global: the commit timer must not depend on it.
  const original = globalThis.setTimeout;
  globalThis.setTimeout = (() => 0) as unknown as typeof setTimeout;
  try {
    waiting.value = true;
    write(db, "a");
    const held = db.flush();
    waiting.value = false; // the next event only reads, or awaits something slow
    await held;
  } finally {
    globalThis.setTimeout = original;
  }
  assert.equal(db.db.isTransaction, false);
  db.close();
});

Deno.test("a rollback fails the responses held for its writes", async () => {
  const { db, waiting } = openDb();
  waiting.value = true;
  write(db, "a");
  const held = db.flush();
  db.rollback();
  await assert.rejects(held, /rolled back/);
  assert.equal(db.db.prepare("SELECT count(*) AS n FROM _cf_KV").get()?.n, 0);
  db.close();
});

Deno.test("commitSafely() commits even while other events wait (a socket send)", () => {
  const { db, waiting } = openDb();
  waiting.value = true;
  write(db, "a");
  db.commitSafely();
  assert.equal(db.db.isTransaction, false);
  db.close();
});
