import assert from "node:assert/strict";
import { join } from "node:path";
import { InstanceDb } from "../../workers/instance_db.ts";
import { StorageFaultError } from "../../workers/storage_fault.ts";

Deno.test("InstanceDb with maxStorageBytes: a write past the cap throws STORAGE_LIMIT_EXCEEDED and the turn is rolled back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dohost-storage-limit-" });
  const fatal: unknown[] = [];
  const db = new InstanceDb(join(dir, "db.sqlite"), {
    onFatal: (error) => fatal.push(error),
    maxStorageBytes: 256 * 1024,
  });
  try {
    const insert = () => db.runInternal(() => db.db.prepare("INSERT INTO t VALUES (?)"));
    db.runInternal(() => db.db.exec("CREATE TABLE t (v TEXT)"));
    db.beginWrite();
    await db.flush();
    // A turn that stays under the cap commits.
    db.beginWrite();
    insert().run("a".repeat(50_000));
    await db.flush();
    // A turn that goes over it fails at the write, and its commit reports the rollback.
    db.beginWrite();
    let written = 0;
    const error = (() => {
      try {
        for (;;) {
          db.guard(() => insert().run("b".repeat(50_000)));
          written++;
        }
      } catch (error) {
        return error;
      }
    })();
    assert.ok(error instanceof StorageFaultError);
    assert.equal(error.code, "STORAGE_LIMIT_EXCEEDED");
    assert.equal(error.name, "Error", "the object sees a plain Error");
    assert.equal(
      error.message,
      "Durable Object storage limit of 262144 bytes exceeded: SQLITE_FULL",
    );
    assert.equal((error.cause as { errcode?: number }).errcode, 13, "SQLite said SQLITE_FULL");
    assert.ok(written >= 1 && written < 6, `${written} writes fit`);
    await assert.rejects(db.flush(), (rejection) => {
      assert.ok(rejection instanceof StorageFaultError);
      assert.equal(rejection.code, "STORAGE_LIMIT_EXCEEDED", "the commit names the cause");
      assert.match(rejection.message, /^Writes were rolled back .*limit of 262144 bytes exceeded/);
      return true;
    });
    assert.equal(fatal.length, 1);
    const rows = db.runInternal(() => db.db.prepare("SELECT count(*) AS n FROM t").get());
    assert.equal(rows?.n, 1, "only the first turn's write survived");
    const size = db.runInternal(() =>
      db.db.prepare(
        "SELECT page_count * page_size AS bytes FROM pragma_page_count, pragma_page_size",
      )
        .get()
    );
    assert.ok(Number(size?.bytes) <= 256 * 1024);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});
