/**
 * Where instance bytes live: one SQLite file per instance under the data dir.
 *
 * This is one of the two seams a cluster needs (the other is `placement.ts`): a replicated
 * implementation can put files elsewhere and copy them between nodes without the rest of the
 * server changing. Paths are built only from ids the server generated (app ids, validated
 * kebab-case class names, 64-hex object ids), never from raw client input.
 */

import { join } from "node:path";

/** Where one instance's database file lives, and purging of whole classes and apps. */
export interface InstanceStorage {
  /** The database path of one instance (its directory exists once this returns). */
  dbPath(appId: string, className: string, idHex: string): Promise<string>;
  /** Removes every instance file of a class. */
  purgeClass(appId: string, className: string): Promise<void>;
  /** Removes every instance file of an app. */
  purgeApp(appId: string): Promise<void>;
  /** Removes one instance's files. */
  purgeInstance(appId: string, className: string, idHex: string): Promise<void>;
}

/** {@linkcode InstanceStorage} on the local disk. */
export class LocalInstanceStorage implements InstanceStorage {
  readonly #root: string;

  constructor(dataDir: string) {
    this.#root = join(dataDir, "instances");
  }

  async dbPath(appId: string, className: string, idHex: string): Promise<string> {
    const dir = join(this.#root, appId, className);
    await Deno.mkdir(dir, { recursive: true });
    return join(dir, `${idHex}.sqlite`);
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
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
