/**
 * dohost's entry point, for `deno task start`, `deno task cli` and the compiled binary alike:
 * `dohost [serve] [flags]` runs the server, `dohost <command>` runs a client command
 * (`src/cli/commands.ts` has the list).
 */

import { runCli } from "./src/cli/commands.ts";
import { processIo } from "./src/cli/io.ts";

if (import.meta.main) Deno.exit(await runCli(Deno.args, processIo()));
