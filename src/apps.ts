/**
 * Apps: the tenants of a dohost server. Each has a subdomain, a service key (kept only as a
 * SHA-256 hash) and a JWT secret for its end users. `app_default` always exists.
 */

import type { DatabaseSync } from "node:sqlite";
import { ServerError } from "./errors.ts";
import { randomToken, sha256Hex } from "./secrets.ts";

/** The app that the bare domain, IP addresses and unknown hosts reach. */
export const DEFAULT_APP_ID = "app_default";

/** An app as stored (secrets other than the JWT secret are hashed). */
export interface App {
  appId: string;
  name: string;
  subdomain: string;
  serviceKeyHash: string;
  serviceKeyPrefix: string;
  jwtSecret: string;
  createdAt: string;
}

/** A freshly created app, with the only copy of its service key. */
export interface CreatedApp {
  app_id: string;
  name: string;
  subdomain: string;
  service_key: string;
  jwt_secret: string;
}

const SUBDOMAIN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const RESERVED_SUBDOMAINS = new Set(["www", "default", "api", "admin", "internal"]);

/** The app table. */
export class AppStore {
  readonly #db: DatabaseSync;
  #cache = new Map<string, App>();

  constructor(db: DatabaseSync) {
    this.#db = db;
    for (const row of db.prepare("SELECT * FROM apps").all()) {
      const app = fromRow(row);
      this.#cache.set(app.appId, app);
    }
  }

  /** Creates `app_default` if it does not exist yet; returns it with its secrets if new. */
  ensureDefault(): CreatedApp | null {
    if (this.#cache.has(DEFAULT_APP_ID)) return null;
    return this.#insert(DEFAULT_APP_ID, "default", "default");
  }

  /** `POST /v1/apps`. */
  create(name: string): CreatedApp {
    const trimmed = name.trim();
    if (!trimmed || trimmed.length > 63) {
      throw new ServerError(
        "VALIDATION_INVALID_SCHEMA",
        `Cannot create app "${name}": name must be 1 to 63 characters`,
        { reason: "INVALID_APP_NAME" },
      );
    }
    const appId = `app_${randomToken(6)}`;
    return this.#insert(appId, trimmed, this.#freeSubdomain(trimmed));
  }

  /** All apps, oldest first. */
  list(): App[] {
    return [...this.#cache.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  get(appId: string): App | undefined {
    return this.#cache.get(appId);
  }

  bySubdomain(subdomain: string): App | undefined {
    for (const app of this.#cache.values()) if (app.subdomain === subdomain) return app;
    return undefined;
  }

  /** The app whose service key is `key`, if any. */
  byServiceKey(key: string): App | undefined {
    const hash = sha256Hex(key);
    for (const app of this.#cache.values()) {
      if (timingSafeEqualText(app.serviceKeyHash, hash)) return app;
    }
    return undefined;
  }

  /** Removes the app row (classes, env and meters cascade). */
  delete(appId: string): void {
    this.#db.prepare("DELETE FROM apps WHERE app_id = ?").run(appId);
    this.#cache.delete(appId);
  }

  #insert(appId: string, name: string, subdomain: string): CreatedApp {
    const serviceKey = `bb_sk_${randomToken(24)}`;
    const jwtSecret = randomToken(32);
    const app: App = {
      appId,
      name,
      subdomain,
      serviceKeyHash: sha256Hex(serviceKey),
      serviceKeyPrefix: serviceKey.slice(0, 12),
      jwtSecret,
      createdAt: new Date().toISOString(),
    };
    this.#db.prepare(
      `INSERT INTO apps (app_id, name, subdomain, service_key_hash, service_key_prefix,
        jwt_secret, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      app.appId,
      app.name,
      app.subdomain,
      app.serviceKeyHash,
      app.serviceKeyPrefix,
      app.jwtSecret,
      app.createdAt,
    );
    this.#cache.set(appId, app);
    return { app_id: appId, name, subdomain, service_key: serviceKey, jwt_secret: jwtSecret };
  }

  #freeSubdomain(name: string): string {
    const base = name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "")
      .slice(0, 40) || "app";
    let candidate = base;
    while (
      !SUBDOMAIN.test(candidate) || RESERVED_SUBDOMAINS.has(candidate) ||
      this.bySubdomain(candidate)
    ) {
      candidate = `${base}-${randomToken(2)}`;
    }
    return candidate;
  }
}

/** Compares two strings in time independent of where they differ. */
export function timingSafeEqualText(a: string, b: string): boolean {
  const left = new TextEncoder().encode(a);
  const right = new TextEncoder().encode(b);
  let diff = left.length ^ right.length;
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    diff |= (left[i] ?? 0) ^ (right[i] ?? 0);
  }
  return diff === 0;
}

function fromRow(row: Record<string, unknown>): App {
  return {
    appId: String(row.app_id),
    name: String(row.name),
    subdomain: String(row.subdomain),
    serviceKeyHash: String(row.service_key_hash),
    serviceKeyPrefix: String(row.service_key_prefix),
    jwtSecret: String(row.jwt_secret),
    createdAt: String(row.created_at),
  };
}
