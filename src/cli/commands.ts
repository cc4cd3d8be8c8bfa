/**
 * `dohost <command>`: the command table and the dispatcher `main.ts` calls. Without a command
 * (or with flags only) it serves, so `deno task start [flags]` is `dohost serve [flags]`.
 */

import { usage } from "../config.ts";
import { appsCommand } from "./apps.ts";
import { backupCommand } from "./backup.ts";
import { classesCommand } from "./classes.ts";
import { ApiError, printApiError } from "./client.ts";
import { deployCommand } from "./deploy.ts";
import { devCommand } from "./dev.ts";
import { envCommand } from "./env.ts";
import { instancesCommand } from "./instances.ts";
import { type CliIo, type Command, UsageError } from "./io.ts";
import { logsCommand } from "./logs.ts";
import { serveCommand } from "./serve.ts";

/** Every command, in the order `--help` lists them. */
const COMMANDS: Command[] = [
  serveCommand,
  devCommand,
  deployCommand,
  appsCommand,
  classesCommand,
  envCommand,
  instancesCommand,
  logsCommand,
  backupCommand,
];

/** Runs `dohost <args>`; resolves with the exit code (0 ok, 1 failed, 2 bad usage). */
export async function runCli(args: string[], io: CliIo): Promise<number> {
  const [first, ...rest] = args;
  const named = COMMANDS.find((command) => command.name === first);
  if (first === "help") {
    io.out(help());
    return 0;
  }
  if (!named && first !== undefined && !first.startsWith("-")) {
    io.err(`error: Unknown command "${first}"\n\n${help()}`);
    return 2;
  }
  if (!named && args.includes("--help")) {
    io.out(help());
    return 0;
  }
  const command = named ?? serveCommand;
  try {
    return await command.run(named ? rest : args, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`error: ${error.message}\n\n${command.help}`);
      return 2;
    }
    if (error instanceof ApiError) {
      printApiError(io, error);
      return 1;
    }
    throw error;
  }
}

/** The serve flags followed by the command list. */
function help(): string {
  const list = COMMANDS.map((command) => `  ${command.name.padEnd(10)} ${command.summary}`);
  return [
    usage(),
    "",
    "Commands (dohost <command> --help, or deno task cli <command> --help):",
    ...list,
  ].join("\n");
}
