/**
 * The host's leveled logger: the only place on the host that writes to the console.
 *
 * Lines are human-readable by default, or one JSON object per line with `--log-format json`.
 * Tests pass {@linkcode silentLogger}.
 */

import type { LogLevel } from "../workers/protocol.ts";

/** Structured fields attached to a log line. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** A leveled logger. */
export interface Logger {
  log(level: LogLevel, message: string, fields?: LogFields): void;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Options for {@linkcode consoleLogger}. */
export interface ConsoleLoggerOptions {
  format: "text" | "json";
  level: LogLevel;
}

/** A logger writing to stderr (stdout for the startup banner goes through `print`). */
export function consoleLogger(options: ConsoleLoggerOptions): Logger {
  return {
    log(level, message, fields = {}) {
      if (RANK[level] < RANK[options.level]) return;
      const line = options.format === "json"
        ? JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })
        : `${new Date().toISOString()} ${level.toUpperCase()} ${message}${formatFields(fields)}`;
      // deno-lint-ignore no-console -- the host's single console writer
      console.error(line);
    },
  };
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = { log() {} };

/** Writes a line to stdout: the startup banner and other output meant for the operator. */
export function print(line: string): void {
  // deno-lint-ignore no-console -- the host's single console writer
  console.log(line);
}

/** Writes a line to stderr: errors of the command-line client. */
export function printError(line: string): void {
  // deno-lint-ignore no-console -- the host's single console writer
  console.error(line);
}

function formatFields(fields: LogFields): string {
  const parts = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === "string" ? JSON.stringify(value) : value}`);
  return parts.length ? ` ${parts.join(" ")}` : "";
}
