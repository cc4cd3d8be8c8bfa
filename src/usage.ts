/**
 * Usage meters: requests the dispatcher counted and CPU time the instance threads used, per
 * app, class and UTC month. Counted in memory on the hot path and written to the meta
 * database every few seconds and at shutdown.
 */

import type { DatabaseSync } from "node:sqlite";

/** The figures `usage` returns. */
export interface UsageFigures {
  do_requests: number;
  do_cpu_ms: number;
}

interface Pending {
  requests: number;
  cpuMs: number;
}

/** Counts usage and persists it. */
export class UsageMeter {
  readonly #db: DatabaseSync;
  #pending = new Map<string, Pending>();

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** One request reached a class of the app. */
  countRequest(appId: string, className: string): void {
    this.#entry(appId, className).requests++;
  }

  /** Instance code of the class ran for `cpuMs` of thread CPU time. */
  addCpu(appId: string, className: string, cpuMs: number): void {
    if (cpuMs > 0) this.#entry(appId, className).cpuMs += cpuMs;
  }

  /** The app's figures for the current UTC month (all classes). */
  month(appId: string): UsageFigures {
    this.flush();
    const row = this.#db.prepare(
      "SELECT COALESCE(SUM(requests), 0) AS r, COALESCE(SUM(cpu_ms), 0) AS c FROM usage " +
        "WHERE app_id = ? AND period = ?",
    ).get(appId, currentPeriod());
    return { do_requests: Number(row?.r ?? 0), do_cpu_ms: Math.round(Number(row?.c ?? 0)) };
  }

  /** Writes the in-memory counts to the database. */
  flush(): void {
    if (this.#pending.size === 0) return;
    const period = currentPeriod();
    const upsert = this.#db.prepare(
      `INSERT INTO usage (app_id, period, class, requests, cpu_ms) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (app_id, period, class) DO UPDATE SET
         requests = requests + excluded.requests, cpu_ms = cpu_ms + excluded.cpu_ms`,
    );
    const exists = this.#db.prepare("SELECT 1 FROM apps WHERE app_id = ?");
    for (const [key, counts] of this.#pending) {
      const [appId = "", className = ""] = key.split("\0");
      if (exists.get(appId)) upsert.run(appId, period, className, counts.requests, counts.cpuMs);
    }
    this.#pending.clear();
  }

  #entry(appId: string, className: string): Pending {
    const key = `${appId}\0${className}`;
    let entry = this.#pending.get(key);
    if (!entry) {
      entry = { requests: 0, cpuMs: 0 };
      this.#pending.set(key, entry);
    }
    return entry;
  }
}

/** `YYYY-MM-01` of the current UTC month. */
function currentPeriod(): string {
  return `${new Date().toISOString().slice(0, 7)}-01`;
}
