/**
 * Drops every user SQL object, for `deleteAll()` (on the SQLite backend it empties the whole
 * database, not only the KV table).
 *
 * Views go first, then virtual tables (which drop their own shadow tables), then the remaining
 * tables; indexes and triggers go with their tables. Dropping a table deletes its rows first,
 * which would trip foreign keys between user tables, so constraints are deferred for the
 * duration: once every table is gone nothing is left to violate them. Internal `_cf_*` tables
 * and SQLite's own `sqlite_*` tables stay (AUTOINCREMENT counters are emptied).
 */

import type { InstanceDb } from "./instance_db.ts";

const USER_OBJECTS = String.raw`SELECT type, name, sql FROM sqlite_master
  WHERE type IN ('table', 'view')
    AND name NOT LIKE '\_cf\_%' ESCAPE '\' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`;

/** Drops all user tables, views, indexes and triggers. Call inside a write transaction. */
export function dropUserSchema(db: InstanceDb): void {
  db.runInternal(() => {
    const deferred = Number(db.db.prepare("PRAGMA defer_foreign_keys").get()?.defer_foreign_keys);
    db.db.exec("PRAGMA defer_foreign_keys = ON");
    try {
      dropWhere(db, (row) => row.type === "view");
      dropWhere(db, (row) => /^\s*CREATE\s+VIRTUAL\s/i.test(row.sql));
      dropWhere(db, () => true);
      const sequence = db.db.prepare(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'",
      ).get();
      if (sequence !== undefined) db.db.exec("DELETE FROM sqlite_sequence");
    } finally {
      db.db.exec(`PRAGMA defer_foreign_keys = ${deferred ? "ON" : "OFF"}`);
    }
  });
}

interface SchemaRow {
  type: string;
  name: string;
  sql: string;
}

function dropWhere(db: InstanceDb, test: (row: SchemaRow) => boolean): void {
  const rows = db.db.prepare(USER_OBJECTS).all().map((row) => ({
    type: String(row.type),
    name: String(row.name),
    sql: String(row.sql ?? ""),
  }));
  for (const row of rows) {
    if (!test(row)) continue;
    const kind = row.type === "view" ? "VIEW" : "TABLE";
    db.db.exec(`DROP ${kind} IF EXISTS "${row.name.replaceAll('"', '""')}"`);
  }
}
