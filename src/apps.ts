/**
 * Apps: the tenants of a dohost server. Each has a subdomain, service keys (kept only as SHA-256
 * hashes, see `service_keys.ts`), a JWT secret for its end users (sealed at rest with the
 * master key, see `secret_box.ts`) and optional JWKS settings (`app_auth.ts`). `app_default`
 * always exists.
 */

import type { DatabaseSync } from "node:sqlite";
import { type AppAuthOptions, AppAuthStore } from "./app_auth.ts";
import { ServerError } from "./errors.ts";
import type { SecretBox } from "./secret_box.ts";
import { randomToken, sha256Hex } from "./secrets.ts";
import { ServiceKeyStore } from "./service_keys.ts";

/** The app that the bare domain, IP addresses and unknown hosts reach. */
export const DEFAULT_APP_ID = "app_default";

/** An app as held in memory (its JWT secret opened; service keys live in `keys`). */
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

/** Options for {@linkcode AppStore}. */
export interface AppStoreOptions extends AppAuthOptions {
  /** Seals the JWT secrets at rest. */
  secrets: SecretBox;
}

/** The app table, with each app's service keys and JWT settings. */
export class AppStore {
  readonly #db: DatabaseSync;
  readonly #secrets: SecretBox;
  #cache = new Map<string, App>();
  /** The apps' service keys. */
  readonly keys: ServiceKeyStore;
  /** The apps' end-user JWT settings. */
  readonly auth: AppAuthStore;

  constructor(db: DatabaseSync, options: AppStoreOptions) {
    this.#db = db;
    this.#secrets = options.secrets;
    this.keys = new ServiceKeyStore(db);
    this.auth = new AppAuthStore(db, options);
    for (const row of db.prepare("SELECT * FROM apps").all()) {
      const app = fromRow(row);
      const context = secretContext(app.appId);
      app.jwtSecret = this.#secrets.openOrPlain(app.jwtSecret, context);
      if (String(row.jwt_secret) === app.jwtSecret) {
        db.prepare("UPDATE apps SET jwt_secret = ? WHERE app_id = ?")
          .run(this.#secrets.seal(app.jwtSecret, context), app.appId);
      }
      this.#cache.set(app.appId, app);
    }
    this.#adoptLegacyKeys();
  }

  /** Data dirs from before key rotation kept one key hash per app row: move them, once. */
  #adoptLegacyKeys(): void {
    const done = this.#db.prepare("SELECT 1 FROM settings WHERE key = 'service_keys_v1'").get();
    if (done) return;
    for (const app of this.#cache.values()) {
      if (this.keys.list(app.appId).length === 0) {
        this.keys.adoptHash(app.appId, app.serviceKeyHash, app.serviceKeyPrefix);
      }
    }
    this.#db.prepare("INSERT INTO settings (key, value) VALUES ('service_keys_v1', 'done')").run();
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

  /** The app one of whose (unrevoked) service keys is `key`, if any. */
  byServiceKey(key: string): App | undefined {
    const appId = this.keys.appOf(key);
    return appId === null ? undefined : this.#cache.get(appId);
  }

  /** Removes the app row (keys, classes, env and meters cascade). */
  delete(appId: string): void {
    this.#db.prepare("DELETE FROM apps WHERE app_id = ?").run(appId);
    this.#cache.delete(appId);
    this.keys.forgetApp(appId);
    this.auth.forgetApp(appId);
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
      this.#secrets.seal(jwtSecret, secretContext(appId)),
      app.createdAt,
    );
    this.keys.adopt(appId, "initial", serviceKey);
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

/** Where an app's JWT secret is sealed (bound into the ciphertext). */
function secretContext(appId: string): string {
  return `apps:${appId}:jwt_secret`;
}
