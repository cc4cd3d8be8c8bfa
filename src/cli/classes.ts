/**
 * `dohost classes`: the deployed classes of an app, one class's details, and deleting one.
 */

import { appPath, clientFor } from "./client.ts";
import {
  type CliIo,
  type Command,
  COMMON_OPTIONS,
  parseCommand,
  printJson,
  printTable,
  UsageError,
} from "./io.ts";

interface ClassRow {
  name: string;
  class_name: string | null;
  status: string;
  access_mode: string;
  last_deployed_at: string | null;
  error_message: string | null;
}

const OPTIONS = { ...COMMON_OPTIONS, app: { type: "string" } } as const;

/** `dohost classes [list | show <name> | delete <name>] [--app]`. */
export const classesCommand: Command = {
  name: "classes",
  summary: "List, show or delete deployed classes",
  help: `Usage: dohost classes [list] [--app <app_id>]
       dohost classes show <name> [--app <app_id>]
       dohost classes delete <name> [--app <app_id>]

Deleting a class also deletes every instance's storage.

  --app    App id (default: app_default)
  --url    Server URL (default: $DOHOST_URL or http://127.0.0.1:8787)
  --json   Print the API answer as JSON`,
  run: classes,
};

async function classes(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(args, OPTIONS);
  if (values.help) {
    io.out(classesCommand.help);
    return 0;
  }
  const [action = "list", name, ...extra] = positionals;
  if (extra.length) throw new UsageError("too many arguments");
  const client = clientFor(values.url, io);
  const base = `${appPath(values.app ?? "app_default")}/durable-objects`;
  if (action === "list") {
    if (name) throw new UsageError("classes list takes no arguments");
    const body = await client.json("GET", base) as { durable_objects: ClassRow[] };
    if (values.json) printJson(io, body);
    else {
      printTable(
        io,
        ["NAME", "CLASS", "STATUS", "ACCESS", "DEPLOYED", "ERROR"],
        body.durable_objects.map((row) => [
          row.name,
          row.class_name ?? "-",
          row.status,
          row.access_mode,
          row.last_deployed_at ?? "-",
          row.error_message ?? "",
        ]),
      );
    }
    return 0;
  }
  if (action !== "show" && action !== "delete") {
    throw new UsageError(`Unknown classes action "${action}": expected list, show or delete`);
  }
  if (!name) throw new UsageError(`classes ${action} takes a class name`);
  const path = `${base}/${encodeURIComponent(name)}`;
  if (action === "delete") {
    const body = await client.json("DELETE", path);
    if (values.json) printJson(io, body);
    else io.out(`deleted class ${name} and its instances' storage`);
    return 0;
  }
  const body = await client.json("GET", path) as ClassRow & { code: string };
  if (values.json) printJson(io, body);
  else {
    for (const [key, value] of Object.entries(body)) {
      if (key !== "code") io.out(`${key.padEnd(17)} ${value ?? "-"}`);
    }
    io.out("");
    io.out(body.code);
  }
  return 0;
}
