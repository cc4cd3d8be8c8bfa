/**
 * Usage meters, per app, class, instance and UTC month: requests the dispatcher forwarded,
 * thread CPU time of the instance's worker (not wall time), and WebSocket messages in and out.
 * Counted in memory on the hot path and written to `usage_instances` in the meta database
 * every few seconds and at shutdown. Storage bytes are not a flow and are not metered here: the
 * usage report reads them from the instance files when it is asked for.
 *
 * The app-level `do_requests`/`do_cpu_ms` of the current month keep Butterbase's shape; the
 * report adds per-class and per-instance figures, for the month and as all-time totals.
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";

/** The figures `usage` returns (Butterbase's shape). */
export interface UsageFigures {
  do_requests: number;
  do_cpu_ms: number;
}

/** One meter's figures. */
export interface MeterFigures {
  requests: number;
  cpu_ms: number;
  ws_messages_in: number;
  ws_messages_out: number;
}

/** A class's or an instance's figures for the month and in total. */
export interface MeterPair {
  month: MeterFigures;
  total: MeterFigures;
}

/** Per-instance figures in the report. */
export interface InstanceUsage extends MeterPair {
  id: string;
  name: string | null;
  storage_bytes: number;
}

/** The usage route's answer: the original fields plus per-class and per-instance figures. */
export interface UsageReport extends UsageFigures {
  period: string;
  app: MeterPair;
  class: MeterPair & { name: string; storage_bytes: number };
  classes: (MeterPair & { name: string; storage_bytes: number })[];
  instances: InstanceUsage[];
}

interface Pending {
  name: string | null;
  requests: number;
  cpuMs: number;
  wsIn: number;
  wsOut: number;
}

/** Instances listed per report at most (the busiest first). */
const MAX_REPORTED_INSTANCES = 1000;

/** Counts usage and persists it. */
export class UsageMeter {
  readonly #db: DatabaseSync;
  #pending = new Map<string, Pending>();

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** One request reached an instance of a class of the app. */
  countRequest(appId: string, className: string, idHex = "", name: string | null = null): void {
    const entry = this.#entry(appId, className, idHex);
    entry.requests++;
    if (name !== null) entry.name = name;
  }

  /** Instance code of the class ran for `cpuMs` of thread CPU time. */
  addCpu(appId: string, className: string, cpuMs: number, idHex = ""): void {
    if (cpuMs > 0) this.#entry(appId, className, idHex).cpuMs += cpuMs;
  }

  /** WebSocket messages an instance received (`inbound`) and sent (`outbound`). */
  countMessages(
    appId: string,
    className: string,
    idHex: string,
    inbound: number,
    outbound: number,
  ): void {
    const entry = this.#entry(appId, className, idHex);
    entry.wsIn += inbound;
    entry.wsOut += outbound;
  }

  /** The app's figures for the current UTC month (all classes). */
  month(appId: string): UsageFigures {
    this.flush();
    const row = this.#db.prepare(
      "SELECT COALESCE(SUM(requests), 0) AS r, COALESCE(SUM(cpu_ms), 0) AS c " +
        "FROM usage_instances WHERE app_id = ? AND period = ?",
    ).get(appId, currentPeriod());
    return { do_requests: Number(row?.r ?? 0), do_cpu_ms: Math.round(Number(row?.c ?? 0)) };
  }

  /**
   * The full report for `className` of the app; `storage` gives the bytes on disk of each
   * class's instances (class → id → bytes).
   */
  report(
    appId: string,
    className: string,
    storage: Map<string, Map<string, number>>,
  ): UsageReport {
    this.flush();
    const period = currentPeriod();
    const params = { period, app: appId, class: className, max: MAX_REPORTED_INSTANCES };
    const perClass = this.#db.prepare(
      `SELECT class, ${sums("period = :period")}, ${sums("1")} FROM usage_instances
       WHERE app_id = :app GROUP BY class ORDER BY class`,
    ).all(pick(params, "period", "app"));
    const classNames = new Set([...perClass.map((row) => String(row.class)), ...storage.keys()]);
    classNames.delete("");
    const classes = [...classNames].sort().map((name) => {
      const row = perClass.find((item) => String(item.class) === name);
      const bytes = [...(storage.get(name)?.values() ?? [])].reduce((sum, n) => sum + n, 0);
      return { name, ...pair(row), storage_bytes: bytes };
    });
    const app = pair(
      this.#db.prepare(
        `SELECT ${sums("period = :period")}, ${sums("1")} FROM usage_instances
         WHERE app_id = :app`,
      ).get(pick(params, "period", "app")),
    );
    const instances = this.#db.prepare(
      `SELECT id_hex, MAX(name) AS name, ${sums("period = :period")}, ${sums("1")}
       FROM usage_instances WHERE app_id = :app AND class = :class AND id_hex != ''
       GROUP BY id_hex ORDER BY t_requests DESC, id_hex LIMIT :max`,
    ).all(params).map((row) => ({
      id: String(row.id_hex),
      name: typeof row.name === "string" ? row.name : null,
      ...pair(row),
      storage_bytes: storage.get(className)?.get(String(row.id_hex)) ?? 0,
    }));
    const current = classes.find((item) => item.name === className) ??
      { name: className, ...pair(undefined), storage_bytes: 0 };
    return {
      do_requests: app.month.requests,
      do_cpu_ms: app.month.cpu_ms,
      period,
      app,
      class: current,
      classes,
      instances,
    };
  }

  /** Writes the in-memory counts to the database. */
  flush(): void {
    if (this.#pending.size === 0) return;
    const period = currentPeriod();
    const upsert = this.#db.prepare(
      `INSERT INTO usage_instances (app_id, period, class, id_hex, name, requests, cpu_ms,
         ws_in, ws_out) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (app_id, period, class, id_hex) DO UPDATE SET
         name = COALESCE(excluded.name, name),
         requests = requests + excluded.requests, cpu_ms = cpu_ms + excluded.cpu_ms,
         ws_in = ws_in + excluded.ws_in, ws_out = ws_out + excluded.ws_out`,
    );
    const exists = this.#db.prepare("SELECT 1 FROM apps WHERE app_id = ?");
    // One transaction: a failed flush (disk full) keeps every count for the next try.
    this.#db.exec("BEGIN");
    try {
      this.#writePending(exists, upsert, period);
      this.#db.exec("COMMIT");
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw error;
    }
    this.#pending.clear();
  }

  #writePending(exists: StatementSync, upsert: StatementSync, period: string): void {
    for (const [key, counts] of this.#pending) {
      const [appId = "", className = "", idHex = ""] = key.split("\0");
      if (!exists.get(appId)) continue;
      upsert.run(
        appId,
        period,
        className,
        idHex,
        counts.name,
        counts.requests,
        counts.cpuMs,
        counts.wsIn,
        counts.wsOut,
      );
    }
  }

  #entry(appId: string, className: string, idHex: string): Pending {
    const key = `${appId}\0${className}\0${idHex}`;
    let entry = this.#pending.get(key);
    if (!entry) {
      entry = { name: null, requests: 0, cpuMs: 0, wsIn: 0, wsOut: 0 };
      this.#pending.set(key, entry);
    }
    return entry;
  }
}

/** SQL sums of the four meters over rows matching `where`, prefixed `m_` or `t_`. */
function sums(where: string): string {
  const prefix = where === "1" ? "t" : "m";
  return ["requests", "cpu_ms", "ws_in", "ws_out"]
    .map((column) =>
      `COALESCE(SUM(CASE WHEN ${where} THEN ${column} END), 0) AS ${prefix}_${column}`
    )
    .join(", ");
}

/** The named parameters a statement uses (node:sqlite refuses unknown names). */
function pick<T extends Record<string, string | number>>(
  params: T,
  ...names: (keyof T)[]
): Record<string, string | number> {
  return Object.fromEntries(names.map((name) => [name, params[name]]));
}

function pair(row: Record<string, unknown> | undefined): MeterPair {
  const figures = (prefix: string): MeterFigures => ({
    requests: Number(row?.[`${prefix}_requests`] ?? 0),
    cpu_ms: Math.round(Number(row?.[`${prefix}_cpu_ms`] ?? 0)),
    ws_messages_in: Number(row?.[`${prefix}_ws_in`] ?? 0),
    ws_messages_out: Number(row?.[`${prefix}_ws_out`] ?? 0),
  });
  return { month: figures("m"), total: figures("t") };
}

/** `YYYY-MM-01` of the current UTC month. */
function currentPeriod(): string {
  return `${new Date().toISOString().slice(0, 7)}-01`;
}
