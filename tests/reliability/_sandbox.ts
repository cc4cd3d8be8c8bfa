/**
 * A sandbox directory for fuzz runs: the data dir lives two levels down, so a path that
 * escapes it lands somewhere this helper can see and report.
 */

import { join, relative } from "node:path";
import { ESCAPE_MARKER } from "./_fuzz_inputs.ts";

/** A sandbox with its data dir; removed on dispose. */
export interface Sandbox extends AsyncDisposable {
  root: string;
  dataDir: string;
  /** Files and directories under the root but outside the data dir. */
  strays(): Promise<string[]>;
}

/** Creates `<tmp>/dohost-fuzz-*` with the data dir at `a/b/data` inside it. */
export async function sandbox(): Promise<Sandbox> {
  const root = await Deno.makeTempDir({ prefix: "dohost-fuzz-" });
  const dataDir = join(root, "a", "b", "data");
  await Deno.mkdir(dataDir, { recursive: true });
  const allowed = new Set([join(root, "a"), join(root, "a", "b")]);
  return {
    root,
    dataDir,
    async strays() {
      const found: string[] = [];
      const walk = async (dir: string): Promise<void> => {
        for await (const entry of Deno.readDir(dir)) {
          const path = join(dir, entry.name);
          if (path === dataDir) continue;
          if (!allowed.has(path)) found.push(relative(root, path));
          if (entry.isDirectory) await walk(path);
        }
      };
      await walk(root);
      return found;
    },
    async [Symbol.asyncDispose]() {
      await Deno.remove(root, { recursive: true }).catch(() => {});
    },
  };
}

/** Entries named after the fuzz marker in `dirs` (where an escape would most likely land). */
export async function escapedFiles(dirs: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const dir of dirs) {
    try {
      for await (const entry of Deno.readDir(dir)) {
        if (entry.name.includes(ESCAPE_MARKER)) found.push(join(dir, entry.name));
      }
    } catch {
      // a directory we cannot read cannot have received a file either
    }
  }
  return found;
}
