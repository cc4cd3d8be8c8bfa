/**
 * The crash harness: concurrent writers against several instances of a real server process,
 * SIGKILL at a random moment, restart on the same data dir, and a check of every instance.
 *
 * The model tracks every write the harness attempted. A write answered 200 was acknowledged:
 * it must be there after any number of crashes. A write in flight at the kill may or may not
 * be there, but whatever the first restart shows is final (it must not appear or vanish
 * later). Multi-key transactions must be all there or all absent, and the balance transfer's
 * invariant (a + b = 0) must hold in every state a restart can show. Keys nobody wrote must
 * never appear.
 */

import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { objectIdFromName } from "../../workers/protocol.ts";
import { fixture } from "../_helpers.ts";
import { type ChildServer, spawnServer } from "./_child_server.ts";
import { Prng } from "./_prng.ts";

/** Options for {@linkcode runCrashCycles}. */
export interface CrashOptions {
  cycles: number;
  seed: number;
  dataDir: string;
  /** Instances written to concurrently. */
  instances?: number;
  /** Put-writers per instance (each also overwrites one key of its own). */
  writersPerInstance?: number;
  /** Keys per `transaction()` group. */
  groupSize?: number;
  /** Longest wait before the kill, in ms. */
  maxKillDelayMs?: number;
  /** Also set alarms before each kill and check they fire after the restart. */
  alarms?: boolean;
  /** Progress lines (the long run prints them). */
  onProgress?(line: string): void;
}

/** What a run did; `problems` is empty when durability held. */
export interface CrashReport {
  seed: number;
  cycles: number;
  acknowledgedPuts: number;
  acknowledgedTransactions: number;
  acknowledgedTransfers: number;
  acknowledgedAlarms: number;
  inFlightAtKill: number;
  /** In-flight writes found committed after the restart (they were allowed either way). */
  inFlightCommitted: number;
  problems: string[];
  elapsedMs: number;
}

type Status = "pending" | "acked" | "present" | "absent";

interface Write {
  value: string;
  status: Status;
}

interface Group {
  keys: string[];
  value: string;
  status: Status;
}

interface InstanceModel {
  id: string;
  writes: Map<string, Write>;
  groups: Group[];
  /** Overwritten keys: the sequence numbers attempted and acknowledged. */
  overwrites: Map<string, { attempted: number; acked: number; floor: number }>;
  transfersAttempted: number;
  transfersAcked: number;
}

interface AlarmModel {
  id: string;
  at: number;
}

const CLASS = "crash";
/** How long after its time an alarm may take to fire once the server is back. */
const ALARM_GRACE_MS = 15_000;

/** Runs `cycles` kill/restart cycles and returns what it saw. */
export async function runCrashCycles(options: CrashOptions): Promise<CrashReport> {
  const started = Date.now();
  const prng = new Prng(options.seed);
  const log = options.onProgress ?? (() => {});
  const models: InstanceModel[] = Array.from({ length: options.instances ?? 3 }, (_, i) => ({
    id: `crash-${i}`,
    writes: new Map(),
    groups: [],
    overwrites: new Map(),
    transfersAttempted: 0,
    transfersAcked: 0,
  }));
  const alarms: AlarmModel[] = [];
  const report: CrashReport = {
    seed: options.seed,
    cycles: 0,
    acknowledgedPuts: 0,
    acknowledgedTransactions: 0,
    acknowledgedTransfers: 0,
    acknowledgedAlarms: 0,
    inFlightAtKill: 0,
    inFlightCommitted: 0,
    problems: [],
    elapsedMs: 0,
  };
  let server = await spawnServer({ dataDir: options.dataDir });
  try {
    await server.deploy(CLASS, await fixture("crash_do.ts"));
    for (let cycle = 1; cycle <= options.cycles; cycle++) {
      const stop = { killed: false };
      const loops: Promise<void>[] = [];
      for (const model of models) {
        for (let w = 0; w < (options.writersPerInstance ?? 2); w++) {
          loops.push(putWriter(server, model, `c${cycle}w${w}`, stop, report));
        }
        loops.push(txnWriter(server, model, `c${cycle}`, options.groupSize ?? 4, stop, report));
      }
      // Each cycle's alarm is acknowledged before the kill, due either before or after it.
      const alarmSet = options.alarms
        ? setAlarm(server, `alarm-${cycle}`, prng.int(100, 1500), alarms, stop, report)
        : Promise.resolve();
      // Mostly after the writers got going (so each cycle has acknowledged writes to lose),
      // sometimes while the instances are still starting.
      const early = prng.chance(0.2);
      const delay = prng.int(0, early ? 300 : options.maxKillDelayMs ?? 600);
      await alarmSet;
      if (!early) await Promise.race([firstAck(report, stop), Promise.all(loops)]);
      await new Promise((resolve) => setTimeout(resolve, delay));
      stop.killed = true;
      await server.kill("SIGKILL");
      await Promise.all(loops);
      server = await spawnServer({ dataDir: options.dataDir });
      for (const model of models) await verify(server, model, report);
      report.cycles = cycle;
      log(
        `cycle ${cycle}/${options.cycles}: killed ${delay} ms after ` +
          `${early ? "the restart" : "the first acknowledgement"}; ` +
          `acked puts ${report.acknowledgedPuts}, txns ${report.acknowledgedTransactions}, ` +
          `transfers ${report.acknowledgedTransfers}; problems ${report.problems.length}`,
      );
      if (report.problems.length > 0) break;
    }
    if (options.alarms && report.problems.length === 0) await verifyAlarms(server, alarms, report);
    const stopped = await server.kill("SIGTERM");
    if (stopped.code !== 0) {
      report.problems.push(`graceful stop after the last cycle exited with ${stopped.code}`);
    }
  } finally {
    await server.kill("SIGKILL");
    report.elapsedMs = Date.now() - started;
  }
  return report;
}

/** Writes fresh keys and overwrites one key of its own until the kill. */
async function putWriter(
  server: ChildServer,
  model: InstanceModel,
  writer: string,
  stop: { killed: boolean },
  report: CrashReport,
): Promise<void> {
  const own = `last:${writer}`;
  const overwrite = { attempted: 0, acked: 0, floor: 0 };
  model.overwrites.set(own, overwrite);
  for (let seq = 1; !stop.killed; seq++) {
    const fresh = seq % 3 !== 0;
    const key = fresh ? `k:${writer}:${seq}` : own;
    const value = String(seq);
    const write: Write = { value, status: "pending" };
    if (fresh) model.writes.set(key, write);
    else overwrite.attempted = seq;
    const ok = await send(
      server,
      `/_do/${CLASS}/${model.id}/put?k=${key}&v=${value}`,
      stop,
      report,
    );
    if (ok === null) {
      report.inFlightAtKill++;
      return;
    }
    if (!ok) return;
    report.acknowledgedPuts++;
    if (fresh) write.status = "acked";
    else overwrite.acked = seq;
  }
}

/** Alternates multi-key transactions and balance transfers until the kill. */
async function txnWriter(
  server: ChildServer,
  model: InstanceModel,
  cycle: string,
  groupSize: number,
  stop: { killed: boolean },
  report: CrashReport,
): Promise<void> {
  for (let seq = 1; !stop.killed; seq++) {
    if (seq % 2 === 0) {
      model.transfersAttempted++;
      const ok = await send(server, `/_do/${CLASS}/${model.id}/transfer?gap=2`, stop, report);
      if (ok === null) report.inFlightAtKill++;
      if (!ok) return;
      model.transfersAcked++;
      report.acknowledgedTransfers++;
      continue;
    }
    const keys = Array.from({ length: groupSize }, (_, i) => `g:${cycle}:${seq}:${i}`);
    const group: Group = { keys, value: `${cycle}:${seq}`, status: "pending" };
    model.groups.push(group);
    const path = `/_do/${CLASS}/${model.id}/txn?keys=${keys.join(",")}&v=${group.value}&gap=1`;
    const ok = await send(server, path, stop, report);
    if (ok === null) report.inFlightAtKill++;
    if (!ok) return;
    group.status = "acked";
    report.acknowledgedTransactions++;
  }
}

/** Sets one alarm (recorded once acknowledged). */
async function setAlarm(
  server: ChildServer,
  id: string,
  inMs: number,
  alarms: AlarmModel[],
  stop: { killed: boolean },
  report: CrashReport,
): Promise<void> {
  const res = await post(server, `/_do/${CLASS}/${id}/set-alarm?in=${inMs}`);
  if (res === null) return;
  if (res.status !== 200) {
    if (!stop.killed) report.problems.push(`set-alarm on ${id} answered ${res.status}`);
    return;
  }
  const { at } = await res.json() as { at: number };
  alarms.push({ id, at });
  report.acknowledgedAlarms++;
}

/** Resolves once any write is acknowledged after the call. */
async function firstAck(report: CrashReport, stop: { killed: boolean }): Promise<void> {
  const before = report.acknowledgedPuts + report.acknowledgedTransactions;
  while (!stop.killed && report.acknowledgedPuts + report.acknowledgedTransactions === before) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * One write: true when acknowledged, null when the connection died (the kill), false after
 * an unexpected status (recorded as a problem unless the kill already happened).
 */
async function send(
  server: ChildServer,
  path: string,
  stop: { killed: boolean },
  report: CrashReport,
): Promise<boolean | null> {
  const res = await post(server, path);
  if (res === null) return null;
  if (res.status === 200) return true;
  if (!stop.killed) {
    report.problems.push(`${path} answered ${res.status}: ${await res.text()}`);
  }
  return false;
}

async function post(server: ChildServer, path: string): Promise<Response | null> {
  try {
    return await server.fetch(path, { method: "POST", timeoutMs: 20_000 });
  } catch {
    return null;
  }
}

/** Compares one instance's stored state with the model; fixes the fate of in-flight writes. */
async function verify(server: ChildServer, model: InstanceModel, report: CrashReport) {
  const res = await server.fetch(`/_do/${CLASS}/${model.id}/dump`);
  if (res.status !== 200) {
    report.problems.push(`dump of ${model.id} answered ${res.status}: ${await res.text()}`);
    return;
  }
  const stored = new Map(Object.entries(await res.json() as Record<string, unknown>));
  const problem = (text: string) => report.problems.push(`${model.id}: ${text}`);
  const known = new Set<string>(["bal:a", "bal:b"]);
  for (const [key, write] of model.writes) {
    known.add(key);
    const value = stored.get(key);
    settle(write, value === write.value, value, report, (what) => problem(`put ${key} ${what}`));
  }
  for (const group of model.groups) {
    for (const key of group.keys) known.add(key);
    const present = group.keys.filter((key) => stored.get(key) === group.value).length;
    if (present !== 0 && present !== group.keys.length) {
      problem(`transaction ${group.value} is partial: ${present}/${group.keys.length} keys`);
      continue;
    }
    settle(
      group,
      present > 0,
      present,
      report,
      (what) => problem(`transaction ${group.value} ${what}`),
    );
  }
  for (const [key, overwrite] of model.overwrites) {
    known.add(key);
    const value = Number(stored.get(key) ?? 0);
    const floor = Math.max(overwrite.acked, overwrite.floor);
    if (value < floor || value > overwrite.attempted) {
      problem(`${key} is ${value}; expected ${floor}..${overwrite.attempted}`);
    }
    overwrite.floor = value;
  }
  const a = Number(stored.get("bal:a") ?? 0);
  const b = Number(stored.get("bal:b") ?? 0);
  if (a + b !== 0) problem(`transfer invariant broken: a=${a} b=${b}`);
  if (b < model.transfersAcked || b > model.transfersAttempted) {
    problem(`balance b=${b}; expected ${model.transfersAcked}..${model.transfersAttempted}`);
  }
  model.transfersAcked = model.transfersAttempted = b;
  for (const key of stored.keys()) {
    if (!known.has(key) && !key.startsWith("alarm:")) problem(`unexpected key ${key}`);
  }
}

/** Checks one write or group against what is stored, then records its final fate. */
function settle(
  item: { status: Status },
  present: boolean,
  found: unknown,
  report: CrashReport,
  problem: (what: string) => void,
): void {
  switch (item.status) {
    case "acked":
    case "present":
      if (!present) problem(`was acknowledged but is missing (found ${JSON.stringify(found)})`);
      item.status = "present";
      return;
    case "absent":
      if (present) problem("was absent after an earlier restart but appeared later");
      return;
    case "pending":
      if (present) report.inFlightCommitted++;
      item.status = present ? "present" : "absent";
      return;
  }
}

/**
 * Waits for every acknowledged alarm to fire. The check reads the instance's SQLite file
 * directly instead of asking the object, so it cannot wake the instance and fire the alarm
 * itself: only the server's own scheduler can make it pass.
 */
async function verifyAlarms(
  server: ChildServer,
  alarms: AlarmModel[],
  report: CrashReport,
): Promise<void> {
  for (const alarm of alarms) {
    const path = instanceDbPath(server.dataDir, alarm.id);
    const deadline = Math.max(Date.now(), alarm.at) + ALARM_GRACE_MS;
    let fired = false;
    while (!fired && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(50, alarm.at - Date.now())));
      fired = storedKeyExists(path, "alarm:fired");
    }
    if (!fired) report.problems.push(`alarm of ${alarm.id} (at ${alarm.at}) never fired`);
  }
}

/** Where the server keeps instance `name` of the crash class. */
function instanceDbPath(dataDir: string, name: string): string {
  const idHex = objectIdFromName(`app_default/${CLASS}`, name);
  return join(dataDir, "instances", "app_default", CLASS, `${idHex}.sqlite`);
}

function storedKeyExists(path: string, key: string): boolean {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path, { readOnly: true });
    return db.prepare("SELECT 1 FROM _cf_KV WHERE key = ?").get(key) !== undefined;
  } catch {
    return false;
  } finally {
    db?.close();
  }
}
