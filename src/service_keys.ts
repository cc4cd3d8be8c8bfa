/**
 * Service keys: the secrets an app's backend uses for the control API and for `service_key`
 * classes. An app may hold several at once, so a key can be rotated without downtime (create
 * the new one, switch clients over, revoke the old one).
 *
 * Only a SHA-256 hash and a short display prefix are stored; the key itself is shown once, when
 * it is created. Lookups compare the hash of the presented key with every stored hash in
 * constant time, so the time taken says nothing about how close a guess was. Authorisation
 * happens per request (and per WebSocket upgrade): revoking a key refuses new requests at once
 * but does not cut connections that were authorised before.
 */

import type { DatabaseSync } from "node:sqlite";
import { ServerError } from "./errors.ts";
import { randomToken, sha256Hex, timingSafeEqualText } from "./secrets.ts";

/** The prefix of every service key (Butterbase's). */
export const SERVICE_KEY_PREFIX = "bb_sk_";
/** How many characters of a key are kept for display. */
const DISPLAY_CHARS = 12;
/** Upper bound on live keys per app (rotation needs two; more is a leak waiting to happen). */
export const MAX_KEYS_PER_APP = 20;

/** A stored key, without the key. */
export interface ServiceKeyInfo {
  keyId: string;
  appId: string;
  name: string;
  prefix: string;
  createdAt: string;
}

interface StoredKey extends ServiceKeyInfo {
  hash: string;
}

/** The `service_keys` table, cached in memory. */
export class ServiceKeyStore {
  readonly #db: DatabaseSync;
  #keys: StoredKey[] = [];

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#keys = db.prepare("SELECT * FROM service_keys ORDER BY created_at").all().map(fromRow);
  }

  /** Creates a key for `appId`; returns it (the only time it is visible) and its record. */
  create(appId: string, name: string): { key: string; info: ServiceKeyInfo } {
    if (this.list(appId).length >= MAX_KEYS_PER_APP) {
      throw new ServerError(
        "REQUEST_ERROR",
        `Cannot create a service key: the app already has ${MAX_KEYS_PER_APP} keys`,
        { reason: "TOO_MANY_KEYS", remediation: "Revoke keys that are no longer used." },
      );
    }
    const key = `${SERVICE_KEY_PREFIX}${randomToken(24)}`;
    return { key, info: this.adopt(appId, name, key) };
  }

  /** Stores an existing key (the one an app is created with). */
  adopt(appId: string, name: string, key: string): ServiceKeyInfo {
    const stored: StoredKey = {
      keyId: `key_${randomToken(8)}`,
      appId,
      name,
      prefix: key.slice(0, DISPLAY_CHARS),
      hash: sha256Hex(key),
      createdAt: new Date().toISOString(),
    };
    this.#db.prepare(
      `INSERT INTO service_keys (key_id, app_id, name, prefix, hash, created_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ).run(stored.keyId, appId, name, stored.prefix, stored.hash, stored.createdAt);
    this.#keys.push(stored);
    return info(stored);
  }

  /** Records a key known only by its hash (data dirs from before key rotation existed). */
  adoptHash(appId: string, hash: string, prefix: string): void {
    if (this.#keys.some((key) => key.hash === hash)) return;
    const stored: StoredKey = {
      keyId: `key_${randomToken(8)}`,
      appId,
      name: "initial",
      prefix,
      hash,
      createdAt: new Date().toISOString(),
    };
    this.#db.prepare(
      `INSERT INTO service_keys (key_id, app_id, name, prefix, hash, created_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ).run(stored.keyId, appId, stored.name, prefix, hash, stored.createdAt);
    this.#keys.push(stored);
  }

  /** The app's keys, oldest first (prefixes only). */
  list(appId: string): ServiceKeyInfo[] {
    return this.#keys.filter((key) => key.appId === appId).map(info);
  }

  /** Revokes one of the app's keys; false when the app has no such key. */
  revoke(appId: string, keyId: string): boolean {
    const result = this.#db.prepare("DELETE FROM service_keys WHERE app_id = ? AND key_id = ?")
      .run(appId, keyId);
    this.#keys = this.#keys.filter((key) => !(key.appId === appId && key.keyId === keyId));
    return result.changes > 0;
  }

  /** The app id a presented key belongs to, or null. Every stored hash is compared. */
  appOf(key: string): string | null {
    if (!key.startsWith(SERVICE_KEY_PREFIX)) return null;
    const hash = sha256Hex(key);
    let found: string | null = null;
    for (const stored of this.#keys) {
      if (timingSafeEqualText(stored.hash, hash)) found = stored.appId;
    }
    return found;
  }

  /** Forgets a deleted app's keys (the rows cascade with the app row). */
  forgetApp(appId: string): void {
    this.#keys = this.#keys.filter((key) => key.appId !== appId);
  }
}

function info(stored: StoredKey): ServiceKeyInfo {
  return {
    keyId: stored.keyId,
    appId: stored.appId,
    name: stored.name,
    prefix: stored.prefix,
    createdAt: stored.createdAt,
  };
}

function fromRow(row: Record<string, unknown>): StoredKey {
  return {
    keyId: String(row.key_id),
    appId: String(row.app_id),
    name: String(row.name),
    prefix: String(row.prefix),
    hash: String(row.hash),
    createdAt: String(row.created_at),
  };
}
