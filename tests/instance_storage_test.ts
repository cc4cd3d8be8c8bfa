/**
 * Local instance storage: a new instance's file is written from a template that already has the
 * internal schema in WAL mode, and an existing file is never replaced.
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { LocalInstanceStorage } from "../src/instance_storage.ts";

const ID = "a".repeat(64);

Deno.test("instance storage: a new instance file is a ready database; an existing one is kept", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "dohost-storage-" });
  try {
    const storage = new LocalInstanceStorage(dataDir);
    const path = await storage.dbPath("app_x", "counter", ID);
    const db = new DatabaseSync(path);
    assert.equal(db.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .all().map((row) => row.name);
    assert.deepEqual(tables, ["_cf_KV", "_cf_META"]);
    db.prepare("INSERT INTO _cf_KV (key, value) VALUES ('k', 'v')").run();
    db.close();

    assert.equal(await storage.dbPath("app_x", "counter", ID), path);
    const again = new DatabaseSync(path);
    assert.equal(again.prepare("SELECT value FROM _cf_KV WHERE key = 'k'").get()?.value, "v");
    again.close();
    const names = [...Deno.readDirSync(`${dataDir}/instances/app_x/counter`)].map((e) => e.name);
    assert.deepEqual(names, [`${ID}.sqlite`], "no partial copies left behind");
    assert.equal((await storage.files("app_x", "counter")).length, 1);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
