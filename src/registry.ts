/**
 * Deployed classes and env vars of every app, with Butterbase's validation rules.
 *
 * A deploy is an upsert keyed on (app, name). Rules and their order follow the original
 * service: the name regex, then source checks (imports, `export default`, exactly one exported
 * class) that reject without writing anything, then bundle-level checks (class quota, total
 * size, env collisions, syntax, top-level failures) that leave the row in `ERROR` with its
 * `error_message`. A successful deploy is `READY` and stops the class's live instances so the
 * next request runs the new code; storage is untouched.
 */

import type { DatabaseSync } from "node:sqlite";
import type { WireBinding } from "../workers/protocol.ts";
import type { ThreadSpawner } from "./thread_spawner.ts";
import { type App, AppStore } from "./apps.ts";
import { type Bundle, BundleError, bundleSource } from "./bundler.ts";
import { ServerError } from "./errors.ts";
import { inspectBundle } from "./inspector.ts";
import { isSealed, type SecretBox } from "./secret_box.ts";
import { sha256Hex } from "./secrets.ts";

/** How a class's instances are reached from outside. */
export type AccessMode = "public" | "authenticated" | "service_key";

/** The access modes, default first. */
export const ACCESS_MODES: readonly AccessMode[] = ["authenticated", "public", "service_key"];

/** A class row as stored. */
export interface ClassRecord {
  id: string;
  appId: string;
  name: string;
  className: string | null;
  code: string;
  bundle: string | null;
  accessMode: AccessMode;
  /** Per-class resource limits below the server's, or null for the server's. */
  limits: ClassLimits | null;
  status: "BUILDING" | "READY" | "ERROR";
  errorMessage: string | null;
  lastDeployedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

/** Resource limits one class asks for (each at most the server's flag). */
export interface ClassLimits {
  cpuMs?: number;
  memoryMb?: number;
}

/** The limits of the deploy rules. */
export const LIMITS = {
  maxClassesPerApp: 5,
  maxSourceBytes: 5 * 1024 * 1024,
  maxBundleBytesPerApp: 10 * 1024 * 1024,
  maxEnvValueChars: 8192,
  maxEnvKeyChars: 100,
} as const;

const NAME = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const ENV_KEY = /^[A-Z_][A-Z0-9_]*$/;
const RESERVED_ENV = /^BUTTERBASE_/i;
const DEPLOY_REMEDIATION = "Fix the source code or input and retry. See the dohost README.";

/** What the registry tells the instance manager. */
export interface RegistryEvents {
  /** Live instances of the class (or of every class when `name` is null) must stop. */
  stopInstances(appId: string, name: string | null, reason: "redeploy" | "delete"): Promise<void>;
  /** The class's stored instance data must go. */
  purgeClass(appId: string, name: string): Promise<void>;
}

/** Options for {@linkcode Registry}. */
export interface RegistryOptions {
  /** Starts the throwaway worker that inspects a bundle. */
  spawner: ThreadSpawner;
  memoryLimitMb: number;
  /** The server's CPU limit per event: the ceiling of a class's `limits.cpuMs`. */
  cpuLimitMs?: number;
  events: RegistryEvents;
  /** Seals env values at rest. */
  secrets: SecretBox;
}

/** The class and env tables plus the deploy pipeline. */
export class Registry {
  readonly #db: DatabaseSync;
  readonly #apps: AppStore;
  readonly #options: RegistryOptions;
  #ready = new Map<string, ClassRecord>();

  constructor(db: DatabaseSync, apps: AppStore, options: RegistryOptions) {
    this.#db = db;
    this.#apps = apps;
    this.#options = options;
    for (const row of db.prepare("SELECT * FROM classes WHERE status = 'READY'").all()) {
      const record = fromRow(row);
      this.#ready.set(key(record.appId, record.name), record);
    }
    this.#sealPlainEnv();
  }

  /** Seals env values stored before encryption at rest existed. */
  #sealPlainEnv(): void {
    const update = this.#db.prepare("UPDATE env_vars SET value = ? WHERE app_id = ? AND key = ?");
    for (const row of this.#db.prepare("SELECT app_id, key, value FROM env_vars").all()) {
      const [appId, envKey, value] = [String(row.app_id), String(row.key), String(row.value)];
      if (!isSealed(value)) {
        update.run(this.#options.secrets.seal(value, envContext(appId, envKey)), appId, envKey);
      }
    }
  }

  /** `POST /v1/:appId/durable-objects`: validate, bundle, inspect, save, stop old instances. */
  async deploy(
    app: App,
    input: { name: string; code: string; accessMode: AccessMode; limits?: ClassLimits | null },
  ): Promise<ClassRecord> {
    const { name, code, accessMode } = input;
    if (!NAME.test(name)) {
      throw deployError(
        "INVALID_NAME",
        `Invalid DO name: ${name}. Must be lowercase kebab-case (e.g. 'chat-room').`,
      );
    }
    const limits = this.#checkLimits(input.limits ?? null);
    const sourceBytes = new TextEncoder().encode(code).length;
    if (sourceBytes > LIMITS.maxSourceBytes) {
      throw deployError(
        "SOURCE_TOO_LARGE",
        `Source is ${sourceBytes} bytes; the limit is ${LIMITS.maxSourceBytes} bytes per class.`,
      );
    }
    let bundle: Bundle;
    let className: string;
    try {
      bundle = await bundleSource(code);
      className = await this.#exportedClass(bundle);
    } catch (error) {
      if (!(error instanceof BundleError)) throw error;
      if (error.reason === "SYNTAX_ERROR" || error.reason === "MODULE_INIT_FAILED") {
        this.#save(app.appId, { name, code, accessMode, className: null, bundle: null }, error);
        await this.#options.events.stopInstances(app.appId, name, "redeploy");
      }
      throw deployError(error.reason, error.message);
    }
    const row = { name, code, accessMode, className, bundle: bundle.code };
    const problem = this.#bundleProblem(app, row);
    const record = this.#withLimits(this.#save(app.appId, row, problem), limits);
    await this.#options.events.stopInstances(app.appId, name, "redeploy");
    if (problem) throw deployError(problem.reason, problem.message);
    return record;
  }

  /** Every class of the app, newest first. */
  list(appId: string): ClassRecord[] {
    return this.#db.prepare("SELECT * FROM classes WHERE app_id = ? ORDER BY seq DESC")
      .all(appId).map(fromRow);
  }

  /** One class, in any status. */
  get(appId: string, name: string): ClassRecord | undefined {
    const row = this.#db.prepare("SELECT * FROM classes WHERE app_id = ? AND name = ?")
      .get(appId, name);
    return row ? fromRow(row) : undefined;
  }

  /** The class that serves `/_do/<name>/…`: only READY classes are served. */
  ready(appId: string, name: string): ClassRecord | undefined {
    return this.#ready.get(key(appId, name));
  }

  /** `DELETE /v1/:appId/durable-objects/:name`: removes the class and purges its instances. */
  async delete(appId: string, name: string): Promise<boolean> {
    const result = this.#db.prepare("DELETE FROM classes WHERE app_id = ? AND name = ?")
      .run(appId, name);
    if (result.changes === 0) return false;
    this.#ready.delete(key(appId, name));
    this.#db.prepare("DELETE FROM alarms WHERE app_id = ? AND class = ?").run(appId, name);
    await this.#options.events.stopInstances(appId, name, "delete");
    await this.#options.events.purgeClass(appId, name);
    return true;
  }

  /** The env a worker of this app sees: platform values over user values. */
  env(app: App): Record<string, string> {
    const env: Record<string, string> = {};
    const rows = this.#db.prepare("SELECT key, value FROM env_vars WHERE app_id = ?")
      .all(app.appId);
    for (const row of rows) {
      const envKey = String(row.key);
      env[envKey] = this.#options.secrets.open(String(row.value), envContext(app.appId, envKey));
    }
    env.BUTTERBASE_APP_ID = app.appId;
    env.BUTTERBASE_APP_NAME = app.name;
    env.BUTTERBASE_SUBDOMAIN = app.subdomain;
    return env;
  }

  /** One namespace binding per READY class of the app (`chat-room` → `CHAT_ROOM`). */
  bindings(appId: string): WireBinding[] {
    return [...this.#ready.values()]
      .filter((record) => record.appId === appId)
      .map((record) => ({ binding: bindingName(record.name), name: record.name }));
  }

  /** `GET …/durable-objects/env`: keys only, sorted. */
  envKeys(appId: string): string[] {
    return this.#db.prepare("SELECT key FROM env_vars WHERE app_id = ? ORDER BY key")
      .all(appId).map((row) => String(row.key));
  }

  /** `PUT …/env/:key`: validates, refuses binding collisions, saves, restarts instances. */
  async setEnv(appId: string, envKey: string, value: string): Promise<boolean> {
    validateEnvKey(envKey);
    if (value.length > LIMITS.maxEnvValueChars) {
      throw new ServerError("VALIDATION_INVALID_SCHEMA", "Env value too long (max 8 KB).", {
        reason: "ENV_VALUE_TOO_LONG",
      });
    }
    const clash = this.list(appId).find((record) => bindingName(record.name) === envKey);
    if (clash) throw collision(envKey);
    this.#db.prepare(
      "INSERT INTO env_vars (app_id, key, value) VALUES (?, ?, ?) " +
        "ON CONFLICT (app_id, key) DO UPDATE SET value = excluded.value",
    ).run(appId, envKey, this.#options.secrets.seal(value, envContext(appId, envKey)));
    return await this.#redeployApp(appId);
  }

  /** `DELETE …/env/:key`: idempotent; restarts instances when the app has classes. */
  async deleteEnv(appId: string, envKey: string): Promise<boolean> {
    this.#db.prepare("DELETE FROM env_vars WHERE app_id = ? AND key = ?").run(appId, envKey);
    return await this.#redeployApp(appId);
  }

  /** Forgets the app's READY classes (the rows cascade with the app row). */
  forgetApp(appId: string): void {
    for (const record of [...this.#ready.values()]) {
      if (record.appId === appId) this.#ready.delete(key(appId, record.name));
    }
  }

  async #redeployApp(appId: string): Promise<boolean> {
    const active = [...this.#ready.values()].some((record) => record.appId === appId);
    if (active) await this.#options.events.stopInstances(appId, null, "redeploy");
    return active;
  }

  async #exportedClass(bundle: Bundle): Promise<string> {
    const exports = await inspectBundle(
      this.#options.spawner,
      bundle.code,
      this.#options.memoryLimitMb,
    );
    if (exports.some((item) => item.name === "default" && item.kind === "class")) {
      throw new BundleError(
        "EXPORT_DEFAULT_NOT_SUPPORTED",
        "Source uses 'export default class' which is not supported. " +
          "Use named export instead: 'export class YourClassName {}'.",
      );
    }
    const classes = exports.filter((item) => item.kind === "class" && item.name !== "default");
    const first = classes[0];
    if (!first) {
      throw new BundleError(
        "NO_EXPORTED_CLASS",
        "Source must export exactly one class via 'export class YourClassName {}'. None found.",
      );
    }
    if (classes.length > 1) {
      throw new BundleError(
        "MULTIPLE_EXPORTED_CLASSES",
        `Source must export exactly one class. Found ${classes.length}: ` +
          classes.map((item) => item.name).join(", "),
      );
    }
    return first.name;
  }

  /** Quota, total size and env collisions, checked against the app's other active classes. */
  #bundleProblem(
    app: App,
    row: { name: string; bundle: string },
  ): BundleError | null {
    const others = this.list(app.appId).filter((record) =>
      record.name !== row.name && record.status !== "ERROR"
    );
    if (others.length + 1 > LIMITS.maxClassesPerApp) {
      return new BundleError(
        "TOO_MANY_CLASSES",
        `Too many DO classes for one app (max ${LIMITS.maxClassesPerApp}, got ${
          others.length + 1
        }).`,
      );
    }
    const encoder = new TextEncoder();
    const total = others.reduce(
      (sum, record) => sum + encoder.encode(record.bundle ?? "").length,
      encoder.encode(row.bundle).length,
    );
    if (total > LIMITS.maxBundleBytesPerApp) {
      return new BundleError(
        "BUNDLE_TOO_LARGE",
        `Bundle exceeds ${LIMITS.maxBundleBytesPerApp} bytes after concatenation.`,
      );
    }
    const binding = bindingName(row.name);
    if (binding in this.env(app)) {
      return new BundleError(
        "ENV_BINDING_COLLISION",
        `DO env var key '${binding}' collides with a DO namespace binding. ` +
          "Rename the env var or the conflicting class.",
      );
    }
    return null;
  }

  /** Validates a class's limits against the server's (a class may only lower them). */
  #checkLimits(limits: ClassLimits | null): ClassLimits | null {
    if (!limits) return null;
    const check = (field: string, value: number | undefined, min: number, max?: number) => {
      if (value === undefined) return;
      if (!Number.isInteger(value) || value < min || (max !== undefined && value > max)) {
        throw deployError(
          "INVALID_LIMITS",
          `Invalid limits.${field} ${value}: expected an integer from ${min} to ${
            max ?? "any"
          } (the server's limit)`,
        );
      }
    };
    check("cpu_ms", limits.cpuMs, 10, this.#options.cpuLimitMs);
    check("memory_mb", limits.memoryMb, 16, this.#options.memoryLimitMb);
    const kept: ClassLimits = {};
    if (limits.cpuMs !== undefined) kept.cpuMs = limits.cpuMs;
    if (limits.memoryMb !== undefined) kept.memoryMb = limits.memoryMb;
    return Object.keys(kept).length ? kept : null;
  }

  /** Stores the class's limits and refreshes the served record. */
  #withLimits(record: ClassRecord, limits: ClassLimits | null): ClassRecord {
    this.#db.prepare("UPDATE classes SET limits = ? WHERE app_id = ? AND name = ?")
      .run(limits ? JSON.stringify(limits) : null, record.appId, record.name);
    const updated = { ...record, limits };
    if (updated.status === "READY") this.#ready.set(key(record.appId, record.name), updated);
    return updated;
  }

  #save(
    appId: string,
    row: {
      name: string;
      code: string;
      accessMode: AccessMode;
      className: string | null;
      bundle: string | null;
    },
    problem: BundleError | null,
  ): ClassRecord {
    const now = new Date().toISOString();
    const status = problem ? "ERROR" : "READY";
    this.#db.prepare(
      `INSERT INTO classes (id, app_id, name, class_name, code, code_sha, bundle, access_mode,
         status, error_message, last_deployed_at, created_at, updated_at, seq)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
         (SELECT COALESCE(MAX(seq), 0) + 1 FROM classes))
       ON CONFLICT (app_id, name) DO UPDATE SET class_name = excluded.class_name,
         code = excluded.code, code_sha = excluded.code_sha, bundle = excluded.bundle,
         access_mode = excluded.access_mode, status = excluded.status,
         error_message = excluded.error_message,
         last_deployed_at = COALESCE(excluded.last_deployed_at, classes.last_deployed_at),
         updated_at = excluded.updated_at`,
    ).run(
      crypto.randomUUID(),
      appId,
      row.name,
      row.className,
      row.code,
      sha256Hex(row.code),
      row.bundle,
      row.accessMode,
      status,
      problem?.message ?? null,
      problem ? null : now,
      now,
      now,
    );
    const record = this.get(appId, row.name);
    if (!record) throw new Error(`Class "${row.name}" vanished while saving`);
    if (record.status === "READY") this.#ready.set(key(appId, row.name), record);
    else this.#ready.delete(key(appId, row.name));
    return record;
  }
}

/** The env key of a class's namespace binding: `chat-room` → `CHAT_ROOM`. */
export function bindingName(name: string): string {
  return name.toUpperCase().replaceAll("-", "_");
}

function validateEnvKey(envKey: string): void {
  if (RESERVED_ENV.test(envKey)) {
    throw new ServerError(
      "VALIDATION_INVALID_SCHEMA",
      `Reserved key: "${envKey}" — keys starting with BUTTERBASE_ are reserved for platform use`,
      {
        reason: "RESERVED_ENV_KEY",
        remediation: "Rename the key. BUTTERBASE_* is reserved for platform-injected values.",
      },
    );
  }
  const invalid = !ENV_KEY.test(envKey)
    ? `Invalid env var key '${envKey}'. Must match /^[A-Z_][A-Z0-9_]*$/ ` +
      "(uppercase, digits, underscore)."
    : envKey.length > LIMITS.maxEnvKeyChars
    ? `Invalid env var key '${envKey}'. Keys are at most ${LIMITS.maxEnvKeyChars} characters.`
    : null;
  if (invalid) {
    throw new ServerError("VALIDATION_INVALID_SCHEMA", invalid, {
      reason: "INVALID_ENV_KEY",
      remediation: "Use uppercase identifiers for DO env keys (e.g. APP_ID, API_BASE_URL).",
    });
  }
}

function collision(envKey: string): ServerError {
  return new ServerError(
    "VALIDATION_INVALID_SCHEMA",
    `DO env var key '${envKey}' collides with a DO namespace binding. ` +
      "Rename the env var or the conflicting class.",
    {
      reason: "ENV_BINDING_COLLISION",
      remediation: "Pick an env var name that does not match a DO class binding name " +
        "(UPPER_SNAKE form of the class URL name).",
    },
  );
}

function deployError(reason: string, message: string): ServerError {
  return new ServerError("VALIDATION_INVALID_SCHEMA", message, {
    reason,
    remediation: DEPLOY_REMEDIATION,
  });
}

/** Where an env value is sealed (bound into the ciphertext). */
function envContext(appId: string, envKey: string): string {
  return `env_vars:${appId}:${envKey}`;
}

function key(appId: string, name: string): string {
  return `${appId}\0${name}`;
}

function fromRow(row: Record<string, unknown>): ClassRecord {
  const text = (value: unknown) => (value === null || value === undefined ? null : String(value));
  return {
    id: String(row.id),
    appId: String(row.app_id),
    name: String(row.name),
    className: text(row.class_name),
    code: String(row.code),
    bundle: text(row.bundle),
    accessMode: String(row.access_mode) as AccessMode,
    limits: typeof row.limits === "string" ? JSON.parse(row.limits) as ClassLimits : null,
    status: String(row.status) as ClassRecord["status"],
    errorMessage: text(row.error_message),
    lastDeployedAt: text(row.last_deployed_at),
    createdAt: String(row.created_at),
    updatedAt: String(row.updated_at),
  };
}
