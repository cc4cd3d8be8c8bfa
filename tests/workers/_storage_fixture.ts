/** A `DurableObjectStorage` over an in-memory `InstanceDb`, for the storage tests. */

import { InstanceDb } from "../../workers/instance_db.ts";
import { DurableObjectStorage, type SqlHandle } from "../../workers/storage.ts";

/** Options for {@linkcode openStorage}. */
export interface StorageFixtureOptions {
  maxKeyBytes?: number;
  maxValueBytes?: number;
  hasAlarmHandler?: boolean;
  sql?: SqlHandle;
  /** Database path; defaults to `:memory:`. */
  path?: string;
}

/** The storage under test plus what its hooks observed. */
export interface StorageFixture extends AsyncDisposable {
  db: InstanceDb;
  storage: DurableObjectStorage;
  /** Every `onAlarmChanged` call, in order. */
  alarmEvents: (number | null)[];
  /** How many times `transaction()` went through `blockConcurrencyWhile`. */
  blockCount: number;
  hasAlarmHandler: boolean;
}

/** Opens a fresh storage; dispose it with `await using` (lets the commit timer run, closes). */
export function openStorage(options: StorageFixtureOptions = {}): StorageFixture {
  const fatal: unknown[] = [];
  const db = new InstanceDb(options.path ?? ":memory:", { onFatal: (error) => fatal.push(error) });
  const fixture: StorageFixture = {
    db,
    alarmEvents: [],
    blockCount: 0,
    hasAlarmHandler: options.hasAlarmHandler ?? true,
    storage: new DurableObjectStorage(db, {
      maxKeyBytes: options.maxKeyBytes ?? 2 * 1024 * 1024,
      maxValueBytes: options.maxValueBytes ?? 2 * 1024 * 1024,
      sql: options.sql,
      hooks: {
        onAlarmChanged: (at) => fixture.alarmEvents.push(at),
        hasAlarmHandler: () => fixture.hasAlarmHandler,
        blockConcurrencyWhile: (fn) => {
          fixture.blockCount++;
          return fn();
        },
      },
    }),
    async [Symbol.asyncDispose]() {
      await new Promise((resolve) => setTimeout(resolve, 0));
      db.close();
      if (fatal.length > 0) throw fatal[0];
    },
  };
  return fixture;
}

/** Names of the user tables and views left in the database. */
export function userObjects(db: InstanceDb): string[] {
  return db.db.prepare(
    String.raw`SELECT name FROM sqlite_master WHERE type IN ('table', 'view')
      AND name NOT LIKE '\_cf\_%' ESCAPE '\' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
      ORDER BY name`,
  ).all().map((row) => String(row.name));
}
