import assert from "node:assert/strict";
import { join } from "node:path";
import { InstanceDb } from "../../workers/instance_db.ts";

Deno.test("InstanceDb with maxStorageBytes: a write past the cap throws SQLITE_FULL and the turn is rolled back", async () => {
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
          insert().run("b".repeat(50_000));
          written++;
        }
      } catch (error) {
        return error as Error & { errcode?: number };
      }
    })();
    assert.equal(error.message, "database or disk is full");
    assert.equal(error.errcode, 13);
    assert.ok(written >= 1 && written < 6, `${written} writes fit`);
    await assert.rejects(
      db.flush(),
      /rolled back .*SQLITE_FULL \(the storage limit is 262144 bytes\)/,
    );
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
