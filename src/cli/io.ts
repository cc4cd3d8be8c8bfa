/**
 * What a command sees of the outside world: where its output goes, the environment config.ts
 * read, and a signal that ends long-running commands (`dev`, `logs -f`). Tests pass their own
 * to capture output and stop commands; `main.ts` passes {@linkcode processIo}.
 */

import { parseArgs } from "node:util";
import { readEnvironment } from "../config.ts";
import { print, printError } from "../log.ts";

/** A command's view of the process. */
export interface CliIo {
  /** A line for stdout (results). */
  out(line: string): void;
  /** A line for stderr (errors, progress). */
  err(line: string): void;
  /** The environment variables dohost reads (see `config.ts`). */
  env: Record<string, string | undefined>;
  /** Aborted when a long-running command should stop (SIGINT in a terminal). */
  signal: AbortSignal;
}

/**
 * The real process: stdout, stderr, the environment, and SIGINT/SIGTERM as the signal. The
 * signal handlers are installed only when a command asks for the signal, so Ctrl-C still ends
 * the short commands at once.
 */
export function processIo(): CliIo {
  let controller: AbortController | null = null;
  return {
    out: print,
    err: printError,
    env: readEnvironment(),
    get signal(): AbortSignal {
      if (!controller) {
        const created = new AbortController();
        const stop = () => created.abort();
        Deno.addSignalListener("SIGINT", stop);
        Deno.addSignalListener("SIGTERM", stop);
        controller = created;
      }
      return controller.signal;
    },
  };
}

/** One `dohost <command>`. */
export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** The `--help` text. */
  help: string;
  /** Runs the command; resolves with the exit code. */
  run(args: string[], io: CliIo): Promise<number>;
}

/** A mistake in the command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Option types as `node:util` `parseArgs` takes them. */
export type OptionSpec = Record<
  string,
  { type: "string" | "boolean"; short?: string; multiple?: boolean }
>;

/** Options every client command accepts. */
export const COMMON_OPTIONS = {
  url: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean" },
} as const satisfies OptionSpec;

/** Parses a command's arguments strictly; unknown flags are a {@linkcode UsageError}. */
export function parseCommand<T extends OptionSpec>(
  args: string[],
  options: T,
): ReturnType<typeof parseArgs<{ options: T; allowPositionals: true; strict: true }>> {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** Prints rows as aligned columns under a header. */
export function printTable(io: CliIo, header: string[], rows: string[][]): void {
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => (row[i] ?? "").length))
  );
  const line = (cells: string[]) =>
    cells.map((cell, i) => i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)).join("  ")
      .trimEnd();
  io.out(line(header));
  for (const row of rows) io.out(line(row));
}

/** Prints `value` as indented JSON (the `--json` output). */
export function printJson(io: CliIo, value: unknown): void {
  io.out(JSON.stringify(value, null, 2));
}
