/**
 * Server configuration: the only reader of command-line flags and the environment.
 */

import { parseArgs } from "node:util";
import type { LogLevel } from "../workers/protocol.ts";
import { type OutboundPolicy, OutboundPolicyError, parseOutbound } from "./outbound_policy.ts";

/** Everything the server needs to start. */
export interface Config {
  port: number;
  hostname: string;
  dataDir: string;
  domain: string;
  /** Seconds an instance may stay idle before it is stopped. */
  idleTimeoutSec: number;
  /** Seconds after which an instance holding only hibernatable sockets is hibernated. */
  hibernateAfterSec: number;
  maxKeyBytes: number;
  maxValueBytes: number;
  cpuLimitMs: number;
  /** Memory of one instance: V8 heap plus `ArrayBuffer`s, in MB. */
  memoryLimitMb: number;
  /** Resident memory budget of the whole server in MB (`auto`: from the machine; 0: none). */
  maxServerMemoryMb: number | "auto";
  /** Idle workers kept booted so a cold start skips the thread spawn (0: none). */
  warmWorkers: number;
  maxInstances: number;
  /** Largest request body the data plane accepts, in bytes. */
  maxBodyBytes: number;
  logFormat: "text" | "json";
  logLevel: LogLevel;
  /** From `DOHOST_ADMIN_TOKEN`; when unset one is generated and kept in the data dir. */
  adminToken: string | undefined;
  /** Delay before an alarm's first retry, in ms (hidden `--alarm-retry-base-ms`, for tests). */
  alarmRetryBaseMs: number;
  /** `blockConcurrencyWhile` timeout, in ms (hidden `--block-timeout-ms`, for tests). */
  blockTimeoutMs: number;
  /** From `DOHOST_MASTER_KEY`; when unset one is generated and kept in the data dir. */
  masterKey: string | undefined;
  /** Where object code may connect (`--outbound`). */
  outbound: OutboundPolicy;
  /** Largest database of one instance, in bytes. */
  maxStorageBytes: number;
  /** `GET /metrics` without the admin token. */
  metricsPublic: boolean;
}

/** The flags, their defaults and their help text (shown by `--help`). */
const FLAGS = {
  port: { default: "8787", help: "TCP port to listen on" },
  hostname: { default: "127.0.0.1", help: "Interface to bind" },
  "data-dir": { default: "./data", help: "Where apps, classes and instance storage live" },
  domain: {
    default: "localhost",
    help: "Base domain: <subdomain>.<domain> selects an app, any other host app_default",
  },
  "idle-timeout": { default: "70", help: "Seconds before an idle instance is stopped" },
  "hibernate-after": {
    default: "10",
    help: "Seconds before an instance with only hibernatable sockets hibernates",
  },
  "max-key-bytes": { default: "2048", help: "Largest storage key, in UTF-8 bytes" },
  "max-value-bytes": { default: "131072", help: "Largest storage value, serialized, in bytes" },
  "cpu-limit-ms": {
    default: "30000",
    help: "CPU time one event may use before the instance is reset",
  },
  "memory-limit-mb": {
    default: "128",
    help: "Memory of one instance (V8 heap + ArrayBuffers) before it is reset",
  },
  "max-server-memory-mb": {
    default: "auto",
    help: "Server memory (RSS) budget; over it the instance most likely allocating is " +
      "reset (auto: 80% of RAM; 0: off)",
  },
  "warm-workers": {
    default: "8",
    help: "Booted workers kept ready for new instances (0 disables the pool)",
  },
  "max-instances": {
    default: "1000",
    help: "Live instances per server (least recently used stop first)",
  },
  "max-body-bytes": { default: "104857600", help: "Largest request body, in bytes" },
  "max-storage-bytes": {
    default: "10737418240",
    help: "Largest storage (SQLite database) of one instance, in bytes",
  },
  outbound: {
    default: "public",
    help: "Where objects may connect: public, all, none or an allow-list (host[:port],…)",
  },
  "log-format": { default: "text", help: "text or json" },
  "log-level": { default: "info", help: "debug, info, warn or error" },
} as const;

type FlagName = keyof typeof FLAGS;

/**
 * Flags left out of `--help`: test hooks that shorten Cloudflare's fixed timings (the alarm
 * retry ladder 2 s … 64 s, the 30 s `blockConcurrencyWhile` timeout). Documented in the README.
 */
const HIDDEN_FLAGS = { "alarm-retry-base-ms": "2000", "block-timeout-ms": "30000" } as const;

/** Boolean flags (present means on) and their help text. */
const SWITCHES = {
  "metrics-public": "Serve GET /metrics without the admin token",
} as const;

/** Thrown for bad flags; main prints it with the usage text and exits 2. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** The `--help` text. */
export function usage(): string {
  const lines = Object.entries(FLAGS).map(([name, flag]) =>
    `  --${name.padEnd(20)} ${flag.help} (default: ${flag.default})`
  );
  return [
    "dohost: a self-hosted server for Cloudflare-style Durable Objects",
    "",
    "Usage: deno task start [flags]",
    "",
    "Flags:",
    ...lines,
    ...Object.entries(SWITCHES).map(([name, help]) => `  --${name.padEnd(20)} ${help}`),
    "  --help                 Show this help",
    "",
    "Environment:",
    "  DOHOST_ADMIN_TOKEN     Admin token for the control API (generated and kept in the data",
    "                         dir when unset, and printed once on the first start)",
    "  DOHOST_MASTER_KEY      Key that encrypts env values and JWT secrets at rest (at least 16",
    "                         characters; generated and kept in <data-dir>/master_key when unset)",
  ].join("\n");
}

/** Parses flags and environment. Returns `null` when `--help` was asked for. */
export function loadConfig(args: string[], env: Record<string, string | undefined>): Config | null {
  const options: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" } };
  for (const name of Object.keys(FLAGS)) options[name] = { type: "string" };
  for (const name of Object.keys(HIDDEN_FLAGS)) options[name] = { type: "string" };
  for (const name of Object.keys(SWITCHES)) options[name] = { type: "boolean" };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args, options, allowPositionals: false, strict: true }).values;
  } catch (error) {
    throw new ConfigError(error instanceof Error ? error.message : String(error));
  }
  if (values.help) return null;
  const text = (name: FlagName): string => {
    const value = values[name];
    return typeof value === "string" ? value : FLAGS[name].default;
  };
  const int = (name: FlagName, min: number): number => {
    const value = /^[0-9]+$/.test(text(name)) ? Number(text(name)) : NaN;
    if (!Number.isSafeInteger(value) || value < min) {
      throw new ConfigError(`Invalid --${name} "${text(name)}": expected an integer >= ${min}`);
    }
    return value;
  };
  const logFormat = text("log-format");
  if (logFormat !== "text" && logFormat !== "json") {
    throw new ConfigError(`Invalid --log-format "${logFormat}": expected text or json`);
  }
  const logLevel = text("log-level");
  if (!["debug", "info", "warn", "error"].includes(logLevel)) {
    throw new ConfigError(`Invalid --log-level "${logLevel}": expected debug, info, warn or error`);
  }
  const port = int("port", 0);
  if (port > 65535) throw new ConfigError(`Invalid --port "${port}": expected at most 65535`);
  return {
    port,
    hostname: text("hostname"),
    dataDir: text("data-dir"),
    domain: text("domain").toLowerCase(),
    idleTimeoutSec: int("idle-timeout", 1),
    hibernateAfterSec: int("hibernate-after", 1),
    maxKeyBytes: int("max-key-bytes", 1),
    maxValueBytes: int("max-value-bytes", 1),
    cpuLimitMs: int("cpu-limit-ms", 10),
    memoryLimitMb: int("memory-limit-mb", 16),
    maxServerMemoryMb: serverMemoryFlag(text("max-server-memory-mb")),
    warmWorkers: int("warm-workers", 0),
    maxInstances: int("max-instances", 1),
    maxBodyBytes: int("max-body-bytes", 1),
    logFormat,
    logLevel: logLevel as LogLevel,
    adminToken: env.DOHOST_ADMIN_TOKEN || undefined,
    alarmRetryBaseMs: hiddenInt(values, "alarm-retry-base-ms"),
    blockTimeoutMs: hiddenInt(values, "block-timeout-ms"),
    masterKey: env.DOHOST_MASTER_KEY || undefined,
    outbound: outboundFlag(text("outbound")),
    maxStorageBytes: int("max-storage-bytes", 65536),
    metricsPublic: values["metrics-public"] === true,
  };
}

/** `--max-server-memory-mb`: `auto`, 0 (off) or a budget the server itself fits in. */
function serverMemoryFlag(text: string): number | "auto" {
  if (text === "auto") return text;
  const mb = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(mb) || (mb !== 0 && mb < 64)) {
    throw new ConfigError(`Invalid --max-server-memory-mb "${text}": expected auto, 0 or >= 64`);
  }
  return mb;
}

/** A positive integer hidden flag. */
function hiddenInt(
  values: Record<string, string | boolean | undefined>,
  name: keyof typeof HIDDEN_FLAGS,
): number {
  const raw = values[name];
  const text = typeof raw === "string" ? raw : HIDDEN_FLAGS[name];
  const value = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new ConfigError(`Invalid --${name} "${text}": expected an integer >= 1`);
  }
  return value;
}

function outboundFlag(value: string): OutboundPolicy {
  try {
    return parseOutbound(value);
  } catch (error) {
    if (error instanceof OutboundPolicyError) {
      throw new ConfigError(`Invalid --outbound "${value}": ${error.message}`);
    }
    throw error;
  }
}

/** The environment variables dohost reads. */
const ENV_VARS = ["DOHOST_ADMIN_TOKEN", "DOHOST_MASTER_KEY", "DOHOST_URL"] as const;

/**
 * Reads {@linkcode ENV_VARS}, skipping those this process may not read (`deno task start`
 * grants only some of them), so a missing permission never prompts or throws.
 */
export function readEnvironment(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const variable of ENV_VARS) {
    if (Deno.permissions.querySync({ name: "env", variable }).state === "granted") {
      env[variable] = Deno.env.get(variable);
    }
  }
  return env;
}

/** Where the client commands find the server and how they authenticate. */
export interface ClientConfig {
  /** Base URL of the server, without a trailing slash. */
  url: string;
  /** The bearer token (admin token or a service key), or null when none was found. */
  token: string | null;
}

/** The server a client command talks to when neither `--url` nor `DOHOST_URL` names one. */
export const DEFAULT_URL = "http://127.0.0.1:8787";

/**
 * The client commands' settings: `--url`, else `DOHOST_URL`, else {@linkcode DEFAULT_URL};
 * the token from `DOHOST_ADMIN_TOKEN`, else the admin token a local server keeps in
 * `./data/admin_token` (what `deno task start` made on its first start).
 */
export function clientConfig(
  url: string | undefined,
  env: Record<string, string | undefined>,
): ClientConfig {
  const base = (url || env.DOHOST_URL || DEFAULT_URL).replace(/\/+$/, "");
  try {
    new URL(base);
  } catch {
    throw new ConfigError(`Invalid --url "${base}": expected an http(s) URL`);
  }
  return { url: base, token: env.DOHOST_ADMIN_TOKEN || localAdminToken() };
}

function localAdminToken(): string | null {
  try {
    return Deno.readTextFileSync("./data/admin_token").trim() || null;
  } catch {
    return null;
  }
}
