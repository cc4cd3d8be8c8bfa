/**
 * `dohost apps`: list, create and delete apps (creating and deleting need the admin token).
 */

import { clientFor } from "./client.ts";
import {
  type CliIo,
  type Command,
  COMMON_OPTIONS,
  parseCommand,
  printJson,
  printTable,
  UsageError,
} from "./io.ts";

interface AppRow {
  app_id: string;
  name: string;
  subdomain: string;
  service_key_prefix: string;
  created_at: string;
}

/** `dohost apps [list | create <name> | delete <app_id>]`. */
export const appsCommand: Command = {
  name: "apps",
  summary: "List, create or delete apps",
  help: `Usage: dohost apps [list]
       dohost apps create <name>
       dohost apps delete <app_id>

  --url    Server URL (default: $DOHOST_URL or http://127.0.0.1:8787)
  --json   Print the API answer as JSON`,
  run: apps,
};

async function apps(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(args, COMMON_OPTIONS);
  if (values.help) {
    io.out(appsCommand.help);
    return 0;
  }
  const [action = "list", ...rest] = positionals;
  const client = clientFor(values.url, io);
  switch (action) {
    case "list": {
      if (rest.length) throw new UsageError("apps list takes no arguments");
      const body = await client.json("GET", "/v1/apps") as { apps: AppRow[] };
      if (values.json) printJson(io, body);
      else {
        printTable(
          io,
          ["APP", "NAME", "SUBDOMAIN", "KEY", "CREATED"],
          body.apps.map((app) => [
            app.app_id,
            app.name,
            app.subdomain,
            `${app.service_key_prefix}…`,
            app.created_at,
          ]),
        );
      }
      return 0;
    }
    case "create": {
      const [name, ...extra] = rest;
      if (!name || extra.length) throw new UsageError("apps create takes one name");
      const body = await client.json("POST", "/v1/apps", { name }) as Record<string, string>;
      if (values.json) printJson(io, body);
      else {
        io.out(`created app ${body.app_id} (subdomain ${body.subdomain})`);
        io.out(`  service key: ${body.service_key}`);
        io.out(`  JWT secret:  ${body.jwt_secret}`);
        io.out("Keep these secrets: they are not shown again.");
      }
      return 0;
    }
    case "delete": {
      const [appId, ...extra] = rest;
      if (!appId || extra.length) throw new UsageError("apps delete takes one app id");
      const body = await client.json("DELETE", `/v1/apps/${encodeURIComponent(appId)}`);
      if (values.json) printJson(io, body);
      else io.out(`deleted app ${appId}`);
      return 0;
    }
    default:
      throw new UsageError(`Unknown apps action "${action}": expected list, create or delete`);
  }
}
