/**
 * The control plane's own SQLite database (`<data-dir>/meta.sqlite`): apps, service keys, JWT
 * settings, classes, env vars (sealed, see `secret_box.ts`), usage meters and the alarm
 * schedule. Instance data never lives here.
 */

import { DatabaseSync } from "node:sqlite";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS apps (
  app_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  subdomain TEXT NOT NULL UNIQUE,
  service_key_hash TEXT NOT NULL,
  service_key_prefix TEXT NOT NULL,
  jwt_secret TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS classes (
  id TEXT PRIMARY KEY,
  app_id TEXT NOT NULL REFERENCES apps(app_id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  class_name TEXT,
  code TEXT NOT NULL,
  code_sha TEXT NOT NULL,
  bundle TEXT,
  access_mode TEXT NOT NULL,
  status TEXT NOT NULL,
  error_message TEXT,
  last_deployed_at TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  seq INTEGER NOT NULL,
  UNIQUE (app_id, name)
);
CREATE TABLE IF NOT EXISTS env_vars (
  app_id TEXT NOT NULL REFERENCES apps(app_id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (app_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage (
  app_id TEXT NOT NULL REFERENCES apps(app_id) ON DELETE CASCADE,
  period TEXT NOT NULL,
  class TEXT NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0,
  cpu_ms REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (app_id, period, class)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS service_keys (
  key_id TEXT PRIMARY KEY,
  app_id TEXT NOT NULL REFERENCES apps(app_id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  prefix TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS app_auth (
  app_id TEXT PRIMARY KEY REFERENCES apps(app_id) ON DELETE CASCADE,
  jwks TEXT,
  jwks_url TEXT,
  issuer TEXT,
  audience TEXT,
  updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage_instances (
  app_id TEXT NOT NULL REFERENCES apps(app_id) ON DELETE CASCADE,
  period TEXT NOT NULL,
  class TEXT NOT NULL,
  id_hex TEXT NOT NULL,
  name TEXT,
  requests INTEGER NOT NULL DEFAULT 0,
  cpu_ms REAL NOT NULL DEFAULT 0,
  ws_in INTEGER NOT NULL DEFAULT 0,
  ws_out INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (app_id, period, class, id_hex)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alarms (
  app_id TEXT NOT NULL REFERENCES apps(app_id) ON DELETE CASCADE,
  class TEXT NOT NULL,
  id_hex TEXT NOT NULL,
  name TEXT,
  at INTEGER NOT NULL,
  retry_count INTEGER NOT NULL DEFAULT 0,
  scheduled INTEGER,
  PRIMARY KEY (app_id, class, id_hex)
) WITHOUT ROWID;
`;

/** Opens (and creates) the meta database. */
export function openMetaDb(path: string): DatabaseSync {
  const db = new DatabaseSync(path, { enableForeignKeyConstraints: true });
  db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;");
  db.exec(SCHEMA);
  addColumn(db, "classes", "limits", "TEXT");
  addColumn(db, "alarms", "scheduled", "INTEGER");
  return db;
}

/** Adds a column that later versions introduced, if an older data dir lacks it. */
function addColumn(db: DatabaseSync, table: string, column: string, type: string): void {
  const columns = db.prepare(`PRAGMA table_info(${table})`).all().map((row) => row.name);
  if (!columns.includes(column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
}
