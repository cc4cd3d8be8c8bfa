/**
 * Where instance bytes live: one SQLite file per instance under the data dir.
 *
 * This is one of the two seams a cluster needs (the other is `placement.ts`): a replicated
 * implementation can put files elsewhere and copy them between nodes without the rest of the
 * server changing. Paths are built only from ids the server generated (app ids, validated
 * kebab-case class names, 64-hex object ids), never from raw client input.
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import { InstanceDb } from "../workers/instance_db.ts";

/** One instance's database file as found on disk. */
export interface InstanceFile {
  idHex: string;
  path: string;
  /** The database plus its write-ahead log, in bytes. */
  bytes: number;
  /** Last modification of the database or its log. */
  modified: Date | null;
}

/** Where one instance's database file lives, and purging of whole classes and apps. */
export interface InstanceStorage {
  /**
   * The database path of one instance; its directory exists once this returns, and so does the
   * file (a new one already has the schema, so the instance's first open writes nothing).
   */
  dbPath(appId: string, className: string, idHex: string): Promise<string>;
  /** Removes every instance file of a class. */
  purgeClass(appId: string, className: string): Promise<void>;
  /** Removes every instance file of an app. */
  purgeApp(appId: string): Promise<void>;
  /** Removes one instance's files. */
  purgeInstance(appId: string, className: string, idHex: string): Promise<void>;
  /** The database files of a class's instances (live, hibernated or stopped). */
  files(appId: string, className: string): Promise<InstanceFile[]>;
  /** One instance's database file, or null when it has none yet. */
  file(appId: string, className: string, idHex: string): Promise<InstanceFile | null>;
}

/** {@linkcode InstanceStorage} on the local disk. */
export class LocalInstanceStorage implements InstanceStorage {
  readonly #root: string;
  #template: Uint8Array | null = null;

  constructor(dataDir: string) {
    this.#root = join(dataDir, "instances");
  }

  // Synchronous on purpose: these few small calls (~0.1 ms in all) sit on every cold start, and
  // each async one waits for a thread hop, which took milliseconds under load.
  dbPath(appId: string, className: string, idHex: string): Promise<string> {
    const dir = join(this.#root, appId, className);
    Deno.mkdirSync(dir, { recursive: true });
    const path = join(dir, `${idHex}.sqlite`);
    if (!existsSync(path)) this.#create(path);
    return Promise.resolve(path);
  }

  /**
   * Writes a new instance file from the template: a copy costs ~0.1 ms where creating the
   * database in the worker (WAL header, schema) cost ~3 ms of the cold start, measured. The copy
   * appears under its final name only once complete (a hard link), and an existing file is never
   * replaced. It is only a shortcut: when it fails (a full disk, a file system without hard
   * links) the worker creates the database itself and reports a storage fault with its code.
   */
  #create(path: string): void {
    const partial = `${path}.new-${crypto.randomUUID()}`;
    try {
      Deno.writeFileSync(partial, this.#template ??= makeTemplate(this.#root));
      Deno.linkSync(partial, path);
    } catch {
      // Already created by someone else, or left to the worker (above).
    } finally {
      removeQuietly(partial);
    }
  }

  async purgeClass(appId: string, className: string): Promise<void> {
    await removeIfPresent(join(this.#root, appId, className));
  }

  async purgeApp(appId: string): Promise<void> {
    await removeIfPresent(join(this.#root, appId));
  }

  async purgeInstance(appId: string, className: string, idHex: string): Promise<void> {
    const base = join(this.#root, appId, className, `${idHex}.sqlite`);
    for (const suffix of ["", "-wal", "-shm"]) await removeIfPresent(base + suffix);
  }

  async files(appId: string, className: string): Promise<InstanceFile[]> {
    const dir = join(this.#root, appId, className);
    const found: InstanceFile[] = [];
    try {
      for await (const entry of Deno.readDir(dir)) {
        const match = INSTANCE_FILE.exec(entry.name);
        if (!entry.isFile || !match?.[1]) continue;
        const file = await this.file(appId, className, match[1]);
        if (file) found.push(file);
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return found.sort((a, b) => a.idHex < b.idHex ? -1 : 1);
  }

  async file(appId: string, className: string, idHex: string): Promise<InstanceFile | null> {
    const path = join(this.#root, appId, className, `${idHex}.sqlite`);
    const db = await statIfPresent(path);
    if (!db) return null;
    const wal = await statIfPresent(path + "-wal");
    const times = [db.mtime, wal?.mtime].filter((time): time is Date => time instanceof Date);
    return {
      idHex,
      path,
      bytes: db.size + (wal?.size ?? 0),
      modified: times.length ? new Date(Math.max(...times.map(Number))) : null,
    };
  }
}

/** An empty instance database (WAL mode, internal schema), as bytes. */
function makeTemplate(root: string): Uint8Array {
  Deno.mkdirSync(root, { recursive: true });
  const path = join(root, `.template-${crypto.randomUUID()}.sqlite`);
  try {
    // Closing the only connection checkpoints the log into the file and removes it.
    new InstanceDb(path, { onFatal: () => {} }).close();
    return Deno.readFileSync(path);
  } finally {
    for (const suffix of ["", "-wal", "-shm"]) removeQuietly(path + suffix);
  }
}

/** Removes a scratch file if it is there (and can be removed): never throws. */
function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // not created, or already gone
  }
}

const INSTANCE_FILE = /^([0-9a-f]{64})\.sqlite$/;

async function statIfPresent(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
