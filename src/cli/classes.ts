/**
 * `dohost classes`: the deployed classes of an app, one class's details, and deleting one.
 */

import { APP_FLAG, clientCommand, objectsPath } from "./client_command.ts";
import { COMMON_OPTIONS, printTable, UsageError } from "./io.ts";

interface ClassRow {
  name: string;
  class_name: string | null;
  status: string;
  access_mode: string;
  last_deployed_at: string | null;
  error_message: string | null;
}

/** `dohost classes [list | show <name> | delete <name>] [--app]`. */
export const classesCommand = clientCommand({
  name: "classes",
  summary: "List, show or delete deployed classes",
  usage: `Usage: dohost classes [list] [--app <app_id>]
       dohost classes show <name> [--app <app_id>]
       dohost classes delete <name> [--app <app_id>]

Deleting a class also deletes every instance's storage.`,
  options: { ...COMMON_OPTIONS, app: { type: "string" } } as const,
  flags: [APP_FLAG],
  async run({ values, positionals, io, client: connect, print }) {
    const [action = "list", name, ...extra] = positionals;
    if (extra.length) throw new UsageError("too many arguments");
    const client = connect();
    const base = objectsPath(values.app);
    if (action === "list") {
      if (name) throw new UsageError("classes list takes no arguments");
      const body = await client.json("GET", base) as { durable_objects: ClassRow[] };
      return print(body, () =>
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
        ));
    }
    if (action !== "show" && action !== "delete") {
      throw new UsageError(`Unknown classes action "${action}": expected list, show or delete`);
    }
    if (!name) throw new UsageError(`classes ${action} takes a class name`);
    const path = objectsPath(values.app, name);
    if (action === "delete") {
      const body = await client.json("DELETE", path);
      return print(body, () => io.out(`deleted class ${name} and its instances' storage`));
    }
    const body = await client.json("GET", path) as ClassRow & { code: string };
    return print(body, () => {
      for (const [key, value] of Object.entries(body)) {
        if (key !== "code") io.out(`${key.padEnd(17)} ${value ?? "-"}`);
      }
      io.out("");
      io.out(body.code);
    });
  },
});
