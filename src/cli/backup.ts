/**
 * `dohost backup <dir>`: asks the server to write a consistent copy of its whole data dir into
 * `<dir>` (a path on the server's machine) while it keeps serving. `dohost serve --data-dir
 * <dir>` starts from the copy.
 */

import { resolve } from "node:path";
import { clientCommand } from "./client_command.ts";
import { COMMON_OPTIONS, UsageError } from "./io.ts";

/** `dohost backup <dir>`. */
export const backupCommand = clientCommand({
  name: "backup",
  summary: "Copy the server's data dir while it runs",
  usage: `Usage: dohost backup <dir>

The server writes a consistent copy of its data dir (every SQLite file through SQLite's online
backup) into <dir>, which must be new or empty and outside the data dir. <dir> is a path on the
server's machine; a relative path is taken from this command's working directory. Restore by
starting a server on it: dohost serve --data-dir <dir>. Needs the admin token.`,
  options: COMMON_OPTIONS,
  async run({ positionals, io, client, print }) {
    const [dir, ...extra] = positionals;
    if (!dir || extra.length) throw new UsageError("expected one directory");
    const report = await client().json("POST", "/v1/backups", { dir: resolve(dir) }) as {
      dir: string;
      files: number;
      bytes: number;
    };
    return print(
      report,
      () => io.out(`backed up ${report.files} files (${report.bytes} bytes) to ${report.dir}`),
    );
  },
});
