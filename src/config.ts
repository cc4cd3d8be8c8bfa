/**
 * Server configuration: the only reader of command-line flags and the environment.
 */

import { parseArgs } from "node:util";
import type { LogLevel } from "../workers/protocol.ts";

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
  memoryLimitMb: number;
  maxInstances: number;
  /** Largest request body the data plane accepts, in bytes. */
  maxBodyBytes: number;
  logFormat: "text" | "json";
  logLevel: LogLevel;
  /** From `DOHOST_ADMIN_TOKEN`; when unset one is generated and kept in the data dir. */
  adminToken: string | undefined;
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
  "memory-limit-mb": { default: "128", help: "Heap limit of one instance" },
  "max-instances": {
    default: "1000",
    help: "Live instances per server (least recently used stop first)",
  },
  "max-body-bytes": { default: "104857600", help: "Largest request body, in bytes" },
  "log-format": { default: "text", help: "text or json" },
  "log-level": { default: "info", help: "debug, info, warn or error" },
} as const;

type FlagName = keyof typeof FLAGS;

/** Thrown for bad flags; main prints it with the usage text and exits 2. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** The `--help` text. */
export function usage(): string {
  const lines = Object.entries(FLAGS).map(([name, flag]) =>
    `  --${name.padEnd(18)} ${flag.help} (default: ${flag.default})`
  );
  return [
    "dohost: a self-hosted server for Cloudflare-style Durable Objects",
    "",
    "Usage: deno task start [flags]",
    "",
    "Flags:",
    ...lines,
    "  --help               Show this help",
    "",
    "Environment:",
    "  DOHOST_ADMIN_TOKEN   Admin token for the control API (generated and kept in the data dir",
    "                       when unset, and printed once on the first start)",
  ].join("\n");
}

/** Parses flags and environment. Returns `null` when `--help` was asked for. */
export function loadConfig(args: string[], env: Record<string, string | undefined>): Config | null {
  const options: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" } };
  for (const name of Object.keys(FLAGS)) options[name] = { type: "string" };
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
    const value = Number(text(name));
    if (!Number.isInteger(value) || value < min) {
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
    maxInstances: int("max-instances", 1),
    maxBodyBytes: int("max-body-bytes", 1),
    logFormat,
    logLevel: logLevel as LogLevel,
    adminToken: env.DOHOST_ADMIN_TOKEN || undefined,
  };
}
