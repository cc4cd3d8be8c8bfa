/**
 * `dohost backup <dir>`: asks the server to write a consistent copy of its whole data dir into
 * `<dir>` (a path on the server's machine) while it keeps serving. `dohost serve --data-dir
 * <dir>` starts from the copy.
 */

import { resolve } from "node:path";
import { clientFor } from "./client.ts";
import {
  type CliIo,
  type Command,
  COMMON_OPTIONS,
  parseCommand,
  printJson,
  UsageError,
} from "./io.ts";

/** `dohost backup <dir>`. */
export const backupCommand: Command = {
  name: "backup",
  summary: "Copy the server's data dir while it runs",
  help: `Usage: dohost backup <dir>

The server writes a consistent copy of its data dir (every SQLite file through SQLite's online
backup) into <dir>, which must be new or empty and outside the data dir. <dir> is a path on the
server's machine; a relative path is taken from this command's working directory. Restore by
starting a server on it: dohost serve --data-dir <dir>. Needs the admin token.

  --url    Server URL (default: $DOHOST_URL or http://127.0.0.1:8787)
  --json   Print the API answer as JSON`,
  run: backup,
};

async function backup(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(args, COMMON_OPTIONS);
  if (values.help) {
    io.out(backupCommand.help);
    return 0;
  }
  const [dir, ...extra] = positionals;
  if (!dir || extra.length) throw new UsageError("expected one directory");
  const client = clientFor(values.url, io);
  const report = await client.json("POST", "/v1/backups", { dir: resolve(dir) }) as {
    dir: string;
    files: number;
    bytes: number;
  };
  if (values.json) printJson(io, report);
  else io.out(`backed up ${report.files} files (${report.bytes} bytes) to ${report.dir}`);
  return 0;
}
