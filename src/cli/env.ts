/**
 * `dohost env`: an app's environment variables (values are write-only: `list` shows keys).
 */

import { appPath, clientFor } from "./client.ts";
import {
  type CliIo,
  type Command,
  COMMON_OPTIONS,
  parseCommand,
  printJson,
  UsageError,
} from "./io.ts";

const OPTIONS = { ...COMMON_OPTIONS, app: { type: "string" } } as const;

/** `dohost env set|list|delete`. */
export const envCommand: Command = {
  name: "env",
  summary: "Set, list or delete an app's environment variables",
  help: `Usage: dohost env list [--app <app_id>]
       dohost env set <KEY> <value> [--app <app_id>]
       dohost env delete <KEY> [--app <app_id>]

Setting or deleting a variable restarts the app's live instances. Values are never shown.

  --app    App id (default: app_default)
  --url    Server URL (default: $DOHOST_URL or http://127.0.0.1:8787)
  --json   Print the API answer as JSON`,
  run: env,
};

async function env(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(args, OPTIONS);
  if (values.help) {
    io.out(envCommand.help);
    return 0;
  }
  const [action, key, value, ...extra] = positionals;
  const client = clientFor(values.url, io);
  const base = `${appPath(values.app ?? "app_default")}/durable-objects/env`;
  let body: unknown;
  let line: string;
  switch (action) {
    case "list": {
      if (key) throw new UsageError("env list takes no arguments");
      body = await client.json("GET", base);
      line = (body as { keys: string[] }).keys.join("\n");
      break;
    }
    case "set": {
      if (!key || value === undefined || extra.length) {
        throw new UsageError("env set takes a key and a value");
      }
      body = await client.json("PUT", `${base}/${encodeURIComponent(key)}`, { value });
      line = `set ${key}${redeployNote(body)}`;
      break;
    }
    case "delete": {
      if (!key || value !== undefined) throw new UsageError("env delete takes one key");
      body = await client.json("DELETE", `${base}/${encodeURIComponent(key)}`);
      line = `deleted ${key}${redeployNote(body)}`;
      break;
    }
    default:
      throw new UsageError(
        action
          ? `Unknown env action "${action}": expected set, list or delete`
          : "expected an action",
      );
  }
  if (values.json) printJson(io, body);
  else if (line) io.out(line);
  return 0;
}

function redeployNote(body: unknown): string {
  return (body as { redeployed?: unknown }).redeployed === true
    ? " (the app's classes were redeployed)"
    : "";
}
