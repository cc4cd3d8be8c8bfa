/**
 * `dohost apps`: list, create and delete apps (creating and deleting need the admin token).
 */

import { clientCommand } from "./client_command.ts";
import { COMMON_OPTIONS, printTable, UsageError } from "./io.ts";

interface AppRow {
  app_id: string;
  name: string;
  subdomain: string;
  service_key_prefix: string;
  created_at: string;
}

/** `dohost apps [list | create <name> | delete <app_id>]`. */
export const appsCommand = clientCommand({
  name: "apps",
  summary: "List, create or delete apps",
  usage: `Usage: dohost apps [list]
       dohost apps create <name>
       dohost apps delete <app_id>`,
  options: COMMON_OPTIONS,
  async run({ positionals, io, client: connect, print }) {
    const [action = "list", ...rest] = positionals;
    const client = connect();
    switch (action) {
      case "list": {
        if (rest.length) throw new UsageError("apps list takes no arguments");
        const body = await client.json("GET", "/v1/apps") as { apps: AppRow[] };
        return print(body, () =>
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
          ));
      }
      case "create": {
        const [name, ...extra] = rest;
        if (!name || extra.length) throw new UsageError("apps create takes one name");
        const body = await client.json("POST", "/v1/apps", { name }) as Record<string, string>;
        return print(body, () => {
          io.out(`created app ${body.app_id} (subdomain ${body.subdomain})`);
          io.out(`  service key: ${body.service_key}`);
          io.out(`  JWT secret:  ${body.jwt_secret}`);
          io.out("Keep these secrets: they are not shown again.");
        });
      }
      case "delete": {
        const [appId, ...extra] = rest;
        if (!appId || extra.length) throw new UsageError("apps delete takes one app id");
        const body = await client.json("DELETE", `/v1/apps/${encodeURIComponent(appId)}`);
        return print(body, () => io.out(`deleted app ${appId}`));
      }
      default:
        throw new UsageError(`Unknown apps action "${action}": expected list, create or delete`);
    }
  },
});
