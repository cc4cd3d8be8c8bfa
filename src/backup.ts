/**
 * Online backups of the whole data dir, and the admin route that takes one.
 *
 * Every SQLite file (the meta database and each instance database) is copied with SQLite's
 * online backup through a read-only host handle, so each copy is a consistent committed state
 * even while instances write; other files (the admin token, …) are copied as they are. Write-
 * ahead logs and hidden staging files are skipped: a copy is complete without them. Each file is
 * consistent on its own; files are not frozen together, so an instance that writes while the
 * backup runs may appear at any point of that window. `serve --data-dir <backup>` starts from it.
 */

import { isAbsolute, join, relative, resolve } from "node:path";
import type { Hono } from "hono";
import { z } from "zod";
import type { AppStore } from "./apps.ts";
import { requireAdmin } from "./auth.ts";
import { controlApp, type ControlEnv, json, parse } from "./control.ts";
import { ServerError } from "./errors.ts";
import { copyDatabase } from "./instance_files.ts";
import type { UsageMeter } from "./usage.ts";

/** What a backup wrote. */
export interface BackupReport {
  dir: string;
  files: number;
  bytes: number;
}

const SKIPPED_SUFFIXES = ["-wal", "-shm", "-journal"];

/** Copies `dataDir` into `target`, which must not exist yet or be an empty directory. */
export async function backupDataDir(dataDir: string, target: string): Promise<BackupReport> {
  const source = await Deno.realPath(dataDir);
  const dest = resolve(target);
  const inside = relative(source, dest);
  if (inside === "" || (!inside.startsWith("..") && !isAbsolute(inside))) {
    throw new ServerError("VALIDATION_INVALID_SCHEMA", "Cannot back up into the data dir", {
      reason: "INVALID_BACKUP_DIR",
      remediation: "Choose a directory outside the data dir.",
    });
  }
  await ensureEmptyDir(dest);
  const report: BackupReport = { dir: dest, files: 0, bytes: 0 };
  await copyTree(source, dest, report);
  return report;
}

/** What the backup route needs. */
export interface BackupDeps {
  adminToken: string;
  apps: AppStore;
  usage: UsageMeter;
  dataDir: string;
}

const BackupBody = z.object({
  dir: z.string().min(1, '"dir" is required').refine(isAbsolute, {
    message: "must be an absolute path on the server",
  }),
});

/** `POST /v1/backups {"dir"}` (admin): writes a backup into `dir` on the server's disk. */
export function backupRoutes(deps: BackupDeps): Hono<ControlEnv> {
  const api = controlApp(deps);
  api.post("/backups", async (c) => {
    requireAdmin(c.get("principal"));
    const body = parse(BackupBody, await json(c.req.raw));
    deps.usage.flush();
    return c.json(await backupDataDir(deps.dataDir, body.dir));
  });
  return api;
}

async function ensureEmptyDir(dir: string): Promise<void> {
  try {
    for await (const _ of Deno.readDir(dir)) {
      throw new ServerError("CONFLICT", `Cannot back up into "${dir}": it is not empty`, {
        reason: "BACKUP_DIR_NOT_EMPTY",
        remediation: "Choose a new or empty directory.",
      });
    }
  } catch (error) {
    if (error instanceof ServerError) throw error;
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new ServerError("VALIDATION_INVALID_SCHEMA", `Cannot back up into "${dir}": ${error}`, {
        reason: "INVALID_BACKUP_DIR",
        remediation: "Choose a new or empty directory the server can write.",
      });
    }
    await Deno.mkdir(dir, { recursive: true });
  }
}

async function copyTree(from: string, to: string, report: BackupReport): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (entry.name.startsWith(".")) continue;
    const source = join(from, entry.name);
    const dest = join(to, entry.name);
    if (entry.isDirectory) {
      await copyTree(source, dest, report);
      continue;
    }
    if (!entry.isFile || SKIPPED_SUFFIXES.some((suffix) => entry.name.endsWith(suffix))) continue;
    try {
      if (entry.name.endsWith(".sqlite")) await copyDatabase(source, dest);
      else await Deno.copyFile(source, dest);
    } catch (error) {
      const gone = await Deno.stat(source).then(() => false, () => true);
      if (gone) continue; // purged while the backup ran (a deleted instance or class)
      throw error;
    }
    report.files++;
    report.bytes += (await Deno.stat(dest)).size;
  }
}
