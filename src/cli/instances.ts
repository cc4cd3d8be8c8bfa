/**
 * `dohost instances`: a class's instances and what is inside one (KV entries, read-only SQL),
 * exporting and importing an instance's database, and purging one instance. Everything goes
 * through the inspection routes; no object code runs.
 */

import type { ApiClient } from "./client.ts";
import { APP_FLAG, type ClientCall, clientCommand, objectsPath } from "./client_command.ts";
import { type CliIo, COMMON_OPTIONS, printTable, UsageError } from "./io.ts";

interface InstanceRow {
  id: string;
  name: string | null;
  state: string;
  storage_bytes: number;
  alarm: string | null;
  sockets: number;
  last_active: string | null;
}

interface KvPage {
  items: { key: string; type: string; value: unknown; size: number }[];
  next: string | null;
}

interface SqlAnswer {
  columns: string[];
  rows: Record<string, unknown>[];
  truncated: boolean;
}

const OPTIONS = {
  ...COMMON_OPTIONS,
  app: { type: "string" },
  prefix: { type: "string" },
  start: { type: "string" },
  limit: { type: "string" },
  out: { type: "string", short: "o" },
} as const;

const ACTIONS = ["list", "storage", "sql", "export", "import", "delete"];

/** `dohost instances …`. */
export const instancesCommand = clientCommand({
  name: "instances",
  summary: "List a class's instances; read, query, export, import or purge one",
  usage: `Usage: dohost instances [list] <class>
       dohost instances storage <class> <id> [--prefix p] [--start key] [--limit n]
       dohost instances sql <class> <id> "<query>" [param …]
       dohost instances export <class> <id> [--out file.sqlite]
       dohost instances import <class> <id> <file.sqlite>
       dohost instances delete <class> <id>

<id> is the instance name used in /_do/<class>/<id>, or its 64-hex id. Nothing here runs the
object's code; storage is read from its database file, also while the instance is stopped.
Queries are read-only (parameters are JSON values, else strings). import and delete stop the
instance first.`,
  options: OPTIONS,
  flags: [APP_FLAG],
  run: instances,
});

async function instances(call: ClientCall<typeof OPTIONS>): Promise<number> {
  const { values, positionals, io, print } = call;
  const [first, ...rest] = positionals;
  if (!first) throw new UsageError("expected a class name");
  const [action, args2] = ACTIONS.includes(first) ? [first, rest] : ["list", positionals];
  const [className, id, ...more] = args2;
  if (!className) throw new UsageError(`instances ${action} takes a class name`);
  const client = call.client();
  const base = objectsPath(values.app, className, "instances");
  if (action === "list") {
    if (id) throw new UsageError("instances list takes only a class name");
    const body = await client.json("GET", base) as { instances: InstanceRow[] };
    return print(body, () => printInstances(io, body.instances));
  }
  if (!id) throw new UsageError(`instances ${action} takes a class name and an instance id`);
  const path = `${base}/${encodeURIComponent(id)}`;
  switch (action) {
    case "storage":
      return await storage(client, path, call, more);
    case "sql":
      return await sql(client, path, call, more);
    case "export": {
      if (more.length) throw new UsageError("instances export takes no more arguments");
      const response = await client.send("GET", `${path}/export`);
      const file = values.out ?? `${className}-${id}.sqlite`.replace(/[/\\]/g, "_");
      await Deno.writeFile(file, new Uint8Array(await response.arrayBuffer()));
      io.out(`exported ${className}/${id} to ${file}`);
      return 0;
    }
    case "import": {
      const [file, ...extra] = more;
      if (!file || extra.length) throw new UsageError("instances import takes one file");
      const body = await client.send("PUT", `${path}/export`, {
        body: await Deno.readFile(file),
        headers: { "content-type": "application/vnd.sqlite3" },
      }).then((response) => response.json());
      return print(
        body,
        () => io.out(`imported ${file} into ${className}/${id} (${body.bytes} bytes)`),
      );
    }
    default: {
      if (more.length) throw new UsageError("instances delete takes no more arguments");
      const body = await client.json("DELETE", path);
      return print(body, () => io.out(`deleted ${className}/${id} and its storage`));
    }
  }
}

function printInstances(io: CliIo, rows: InstanceRow[]): void {
  if (!rows.length) {
    io.out("no instances");
    return;
  }
  printTable(
    io,
    ["NAME", "STATE", "BYTES", "ALARM", "SOCKETS", "LAST ACTIVE", "ID"],
    rows.map((row) => [
      row.name ?? "(unique id)",
      row.state,
      String(row.storage_bytes),
      row.alarm ?? "-",
      String(row.sockets),
      row.last_active ?? "-",
      row.id,
    ]),
  );
}

async function storage(
  client: ApiClient,
  path: string,
  { values, io, print }: ClientCall<typeof OPTIONS>,
  extra: string[],
): Promise<number> {
  if (extra.length) throw new UsageError("instances storage takes no more arguments");
  const query = new URLSearchParams();
  for (const name of ["prefix", "start", "limit"] as const) {
    const value = values[name];
    if (value !== undefined) query.set(name, value);
  }
  const page = await client.json("GET", `${path}/storage?${query}`) as KvPage;
  return print(page, () => {
    if (!page.items.length) io.out("no keys");
    for (const item of page.items) {
      const shown = item.type === "json" ? JSON.stringify(item.value) : String(item.value);
      const type = item.type === "json" ? "" : ` (${item.type})`;
      io.out(`${item.key}${type} = ${shown}`);
    }
    if (page.next !== null) io.err(`more: --start ${JSON.stringify(page.next)}`);
  });
}

async function sql(
  client: ApiClient,
  path: string,
  { io, print }: ClientCall<typeof OPTIONS>,
  extra: string[],
): Promise<number> {
  const [query, ...params] = extra;
  if (!query) throw new UsageError("instances sql takes a query");
  const answer = await client.json("POST", `${path}/sql`, {
    query,
    params: params.map(jsonOrString),
  }) as SqlAnswer;
  return print(answer, () => {
    printTable(
      io,
      answer.columns,
      answer.rows.map((row) => answer.columns.map((column) => cell(row[column]))),
    );
    io.err(`${answer.rows.length} row(s)${answer.truncated ? " (truncated)" : ""}`);
  });
}

function jsonOrString(text: string): unknown {
  try {
    const value = JSON.parse(text);
    return typeof value === "object" && value !== null ? text : value;
  } catch {
    return text;
  }
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return "NULL";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}
