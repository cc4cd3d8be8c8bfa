/**
 * `dohost env`: an app's environment variables (values are write-only: `list` shows keys).
 */

import { APP_FLAG, clientCommand, objectsPath } from "./client_command.ts";
import { COMMON_OPTIONS, UsageError } from "./io.ts";

/** `dohost env set|list|delete`. */
export const envCommand = clientCommand({
  name: "env",
  summary: "Set, list or delete an app's environment variables",
  usage: `Usage: dohost env list [--app <app_id>]
       dohost env set <KEY> <value> [--app <app_id>]
       dohost env delete <KEY> [--app <app_id>]

Setting or deleting a variable restarts the app's live instances. Values are never shown.`,
  options: { ...COMMON_OPTIONS, app: { type: "string" } } as const,
  flags: [APP_FLAG],
  async run({ values, positionals, io, client: connect, print }) {
    const [action, key, value, ...extra] = positionals;
    const client = connect();
    const base = objectsPath(values.app, "env");
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
    return print(body, () => {
      if (line) io.out(line);
    });
  },
});

function redeployNote(body: unknown): string {
  return (body as { redeployed?: unknown }).redeployed === true
    ? " (the app's classes were redeployed)"
    : "";
}
