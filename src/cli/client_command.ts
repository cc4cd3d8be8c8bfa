/**
 * What every control-API command (`apps`, `classes`, `env`, `instances`, `logs`, `backup`,
 * `deploy`) has in common, kept in one place so the command files hold only their own actions:
 * strict parsing with `--url`/`--json`/`--help`, the help text's aligned flag list, the client
 * made on first use (so usage mistakes are reported before a missing token), the
 * `--json`-or-text output, and the `/v1/<app>/durable-objects/…` paths.
 */

import { type ApiClient, appPath, clientFor } from "./client.ts";
import {
  type CliIo,
  type Command,
  COMMON_OPTIONS,
  type OptionSpec,
  parseCommand,
  printJson,
} from "./io.ts";

/** One line of a help text's flag list: the flag(s) and what they do. */
export type FlagHelp = [flags: string, description: string];

/** The `--app` line; the commands that take it default to `app_default`. */
export const APP_FLAG: FlagHelp = ["--app", "App id (default: app_default)"];

const URL_FLAG: FlagHelp = ["--url", "Server URL (default: $DOHOST_URL or http://127.0.0.1:8787)"];
const JSON_HELP = "Print the API answer as JSON";

/** The options a client command parses: {@linkcode COMMON_OPTIONS} plus its own. */
export type ClientOptions = typeof COMMON_OPTIONS & OptionSpec;

/** One parsed invocation of a client command, handed to its `run`. */
export interface ClientCall<T extends ClientOptions> {
  values: ReturnType<typeof parseCommand<T>>["values"];
  positionals: string[];
  io: CliIo;
  /** The client for `--url` and the environment, made on the first call. */
  client(): ApiClient;
  /** Prints `body` as JSON under `--json`, else runs `text`; returns exit code 0. */
  print<B>(body: B, text: (body: B) => void): number;
}

/** A client command: its usage text and flags, and what it does once parsed. */
export interface ClientCommandSpec<T extends ClientOptions> {
  name: string;
  summary: string;
  /** The help text above the flag list (usage lines and any explanation). */
  usage: string;
  options: T;
  /** The command's own flags, listed before `--url` and `--json`. */
  flags?: FlagHelp[];
  /** What `--json` does, when not "Print the API answer as JSON". */
  json?: string;
  run(call: ClientCall<T>): Promise<number>;
}

/** Builds a {@linkcode Command} that parses, answers `--help` and then runs `spec.run`. */
export function clientCommand<T extends ClientOptions>(spec: ClientCommandSpec<T>): Command {
  const flags: FlagHelp[] = [...spec.flags ?? [], URL_FLAG, ["--json", spec.json ?? JSON_HELP]];
  const width = Math.max(...flags.map(([flag]) => flag.length)) + 3;
  const help = `${spec.usage}\n\n` +
    flags.map(([flag, description]) => `  ${flag.padEnd(width)}${description}`).join("\n");
  return {
    name: spec.name,
    summary: spec.summary,
    help,
    async run(args: string[], io: CliIo): Promise<number> {
      const { values, positionals } = parseCommand(args, spec.options);
      const common = values as { url?: string; json?: boolean; help?: boolean };
      if (common.help) {
        io.out(help);
        return 0;
      }
      let client: ApiClient | null = null;
      return await spec.run({
        values,
        positionals,
        io,
        client: () => client ??= clientFor(common.url, io),
        print<B>(body: B, text: (body: B) => void): number {
          if (common.json) printJson(io, body);
          else text(body);
          return 0;
        },
      });
    },
  };
}

/** `/v1/<app>/durable-objects` followed by `segments`, each encoded; `app` defaults. */
export function objectsPath(app: string | undefined, ...segments: string[]): string {
  return [`${appPath(app ?? "app_default")}/durable-objects`, ...segments.map(encodeURIComponent)]
    .join("/");
}
