/**
 * The names of instances, kept in the meta database.
 *
 * An instance's file is named by its 64-hex id, a hash of its name, so the name cannot be
 * recovered from the disk. Inspection still wants to show it: each time an instance starts its
 * (app, class, id) → name is recorded here, once per process and id.
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS instance_names (
  app_id TEXT NOT NULL REFERENCES apps(app_id) ON DELETE CASCADE,
  class TEXT NOT NULL,
  id_hex TEXT NOT NULL,
  name TEXT,
  PRIMARY KEY (app_id, class, id_hex)
) WITHOUT ROWID;
`;

/** Records and looks up instance names. */
export class InstanceIndex {
  readonly #insert: StatementSync;
  readonly #names: StatementSync;
  readonly #delete: StatementSync;
  /** Keys recorded by this process: the hot path then skips the write. */
  readonly #seen = new Set<string>();

  constructor(db: DatabaseSync) {
    db.exec(SCHEMA);
    this.#insert = db.prepare(
      "INSERT OR REPLACE INTO instance_names (app_id, class, id_hex, name) VALUES (?, ?, ?, ?)",
    );
    this.#names = db.prepare(
      "SELECT id_hex, name FROM instance_names WHERE app_id = ? AND class = ?",
    );
    this.#delete = db.prepare(
      "DELETE FROM instance_names WHERE app_id = ? AND class = ? AND id_hex = ?",
    );
  }

  /** Remembers that instance `idHex` of a class is called `name` (null for unique ids). */
  record(appId: string, className: string, idHex: string, name: string | null): void {
    const key = `${appId}/${className}/${idHex}`;
    if (this.#seen.has(key)) return;
    try {
      this.#insert.run(appId, className, idHex, name);
    } catch {
      return; // the app was deleted meanwhile (foreign key): nothing to remember
    }
    this.#seen.add(key);
  }

  /** The known names of a class's instances, by id. */
  names(appId: string, className: string): Map<string, string | null> {
    const result = new Map<string, string | null>();
    for (const row of this.#names.all(appId, className)) {
      result.set(String(row.id_hex), row.name === null ? null : String(row.name));
    }
    return result;
  }

  /** Forgets one instance (it was purged). */
  forget(appId: string, className: string, idHex: string): void {
    this.#seen.delete(`${appId}/${className}/${idHex}`);
    this.#delete.run(appId, className, idHex);
  }
}
