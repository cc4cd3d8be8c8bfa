/**
 * The scenarios of the suite. Each one runs against a started target and returns flat metrics
 * (numbers, plus `correct` where the scenario checks correctness). Every phase uses instance
 * ids unique to the run, so repetitions never share state, and every loop is bounded in time.
 */

import { runChat } from "./chat_load.ts";
import { HttpConnection, requestBytes } from "./http_client.ts";
import { request, runLoad } from "./load.ts";
import { CpuMeter, sampleTree } from "./proc_stats.ts";
import { percentile } from "./stats.ts";
import type { RunningTarget, TargetName } from "./targets.ts";

/** What a scenario gets. */
export interface ScenarioContext {
  target: RunningTarget;
  /** Unique per run: prefixes every instance id. */
  runId: string;
  durationMs: number;
  connections: number;
  /** How many instances the memory and spread scenarios touch (1000 in a full run). */
  instances: number;
  /** The pause between the paced cold starts, in ms. */
  coldGapMs: number;
  log(line: string): void;
}

/** A scenario's figures. */
export type Metrics = Record<string, number | boolean>;

/** One scenario. */
export interface Scenario {
  key: string;
  title: string;
  /** Targets it applies to (the bare server only serves the HTTP echo). */
  targets: readonly TargetName[];
  /** Headline metrics shown in the table, in order, with the direction that is better. */
  headline: { metric: string; label: string; better: "higher" | "lower" }[];
  /** Extra dohost flags for this scenario's server. */
  dohostFlags?: string[];
  run(ctx: ScenarioContext): Promise<Metrics>;
}

const DO_TARGETS = ["dohost", "workerd", "miniflare"] as const;
const COLD_IDS = 200;
const HIBERNATE_WAIT_MS = 45_000;

/** Every scenario, in run order (memory first, so its baseline is an idle server). */
export const SCENARIOS: Scenario[] = [
  {
    key: "memory",
    title: "memory: N counter instances touched (1000 in a full run), then left to hibernate",
    targets: DO_TARGETS,
    // workerd evicts an idle object after about 10 s; dohost is told to do the same here only.
    dohostFlags: ["--idle-timeout", "10"],
    headline: [
      { metric: "rss_before_mb", label: "idle RSS (MB)", better: "lower" },
      { metric: "kb_per_instance", label: "KB per live instance", better: "lower" },
      { metric: "kb_per_hibernated", label: "KB per hibernated instance", better: "lower" },
      { metric: "touch_per_s", label: "new instances/s (64 conns)", better: "higher" },
    ],
    async run(ctx) {
      const { target } = ctx;
      await settle();
      const before = sampleTree(target.pid).rssKb;
      const started = performance.now();
      const ids = Array.from(
        { length: ctx.instances },
        (_, i) => `/_do/counter/${ctx.runId}-m${i}`,
      );
      const touch = await touchEach(target.port, ids, "POST", ctx.connections);
      const touchMs = performance.now() - started;
      await settle();
      const after = sampleTree(target.pid).rssKb;
      const idle = await waitForRssToSettle(target.pid, HIBERNATE_WAIT_MS, ctx.log);
      return {
        rss_before_mb: before / 1024,
        rss_after_mb: after / 1024,
        rss_hibernated_mb: idle / 1024,
        instances: ctx.instances,
        kb_per_instance: (after - before) / ctx.instances,
        kb_per_hibernated: Math.max(0, idle - before) / ctx.instances,
        touch_ms: touchMs,
        touch_per_s: ctx.instances / (touchMs / 1000),
        errors: touch.errors,
      };
    },
  },
  {
    key: "echo",
    title: "echo: one hot instance, 64 connections",
    targets: ["dohost", "workerd", "miniflare", "deno-bare"],
    headline: [
      { metric: "rps", label: "req/s", better: "higher" },
      { metric: "p50_ms", label: "p50 ms", better: "lower" },
      { metric: "p99_ms", label: "p99 ms", better: "lower" },
      { metric: "server_cpu_us_per_req", label: "server CPU µs/req", better: "lower" },
    ],
    async run(ctx) {
      const path = `/_do/echo/${ctx.runId}-hot`;
      const meter = new CpuMeter(ctx.target.pid);
      const result = await runLoad({
        port: ctx.target.port,
        connections: ctx.connections,
        durationMs: ctx.durationMs,
        warmupMs: 1000,
        next: () => ({ method: "GET", path }),
        onWindowStart: () => meter.reset(),
      });
      const cpu = meter.read();
      return { ...result, ...cpu, server_cpu_us_per_req: perRequest(cpu.server_cpu_s, result.ok) };
    },
  },
  {
    key: "cold",
    title: `cold start: ${COLD_IDS} new instance ids, one request each`,
    targets: DO_TARGETS,
    headline: [
      { metric: "cold_p50_ms", label: "back-to-back p50 ms", better: "lower" },
      { metric: "cold_p99_ms", label: "back-to-back p99 ms", better: "lower" },
      { metric: "idle_cold_p50_ms", label: "paced p50 ms", better: "lower" },
      { metric: "idle_cold_p99_ms", label: "paced p99 ms", better: "lower" },
      { metric: "warm_p50_ms", label: "same ids again p50 ms", better: "lower" },
    ],
    async run(ctx) {
      // Back to back: the next new id as soon as the previous answer arrived (also measures how
      // fast new instances can be made one after another).
      const back = await sequential(
        ctx.target.port,
        COLD_IDS,
        (i) => `/_do/echo/${ctx.runId}-c${i}`,
        0,
      );
      const warm = await sequential(
        ctx.target.port,
        COLD_IDS,
        (i) => `/_do/echo/${ctx.runId}-c${i}`,
        0,
      );
      // Paced: one new id every --cold-gap ms (50), the latency of a first request to an
      // otherwise idle server (with a gap longer than a worker boot, dohost's pool keeps up).
      const paced = await sequential(
        ctx.target.port,
        COLD_IDS / 2,
        (i) => `/_do/echo/${ctx.runId}-p${i}`,
        ctx.coldGapMs,
      );
      return {
        cold_p50_ms: back.p50,
        cold_p99_ms: back.p99,
        cold_per_s: back.perSecond,
        warm_p50_ms: warm.p50,
        warm_p99_ms: warm.p99,
        idle_cold_p50_ms: paced.p50,
        idle_cold_p99_ms: paced.p99,
        errors: back.errors + warm.errors + paced.errors,
      };
    },
  },
  {
    key: "spread",
    title: "spread: N echo instances (1000 in a full run), first touch then steady load",
    targets: DO_TARGETS,
    // Making 1,000 workers takes dohost minutes: the first ones must not be stopped as idle
    // (default 70 s) before the steady phase that measures them.
    dohostFlags: ["--idle-timeout", "900"],
    headline: [
      { metric: "spread_rps", label: "steady req/s over N ids", better: "higher" },
      { metric: "spread_p99_ms", label: "steady p99 ms", better: "lower" },
      { metric: "first_touch_per_s", label: "first touch: new instances/s", better: "higher" },
      { metric: "first_touch_p50_ms", label: "first touch p50 ms", better: "lower" },
    ],
    async run(ctx) {
      const ids = Array.from(
        { length: ctx.instances },
        (_, i) => `/_do/echo/${ctx.runId}-s${i}`,
      );
      const started = performance.now();
      const touch = await touchEach(ctx.target.port, ids, "GET", ctx.connections);
      const touchMs = performance.now() - started;
      const meter = new CpuMeter(ctx.target.pid);
      const steady = await runLoad({
        port: ctx.target.port,
        connections: ctx.connections,
        durationMs: ctx.durationMs,
        warmupMs: 500,
        onWindowStart: () => meter.reset(),
        next: (conn, seq) => ({
          method: "GET",
          path: ids[(conn * 7919 + seq * 64) % ids.length] ?? "/",
        }),
      });
      const cpu = meter.read();
      return {
        first_touch_ms: touchMs,
        instances: ctx.instances,
        first_touch_per_s: ctx.instances / (touchMs / 1000),
        first_touch_p50_ms: touch.p50,
        first_touch_p99_ms: touch.p99,
        spread_rps: steady.rps,
        spread_p50_ms: steady.p50_ms,
        spread_p99_ms: steady.p99_ms,
        server_cpu_us_per_req: perRequest(cpu.server_cpu_s, steady.ok),
        errors: touch.errors + steady.errors,
        other_cpu_s: cpu.other_cpu_s,
      };
    },
  },
  {
    key: "counter",
    title: "counter: one instance, 64 concurrent clients, await get + put",
    targets: DO_TARGETS,
    headline: [
      { metric: "rps", label: "req/s", better: "higher" },
      { metric: "p50_ms", label: "p50 ms", better: "lower" },
      { metric: "p99_ms", label: "p99 ms", better: "lower" },
    ],
    async run(ctx) {
      const path = `/_do/counter/${ctx.runId}-hot`;
      const seen = new Set<number>();
      let duplicates = 0;
      let highest = 0;
      const meter = new CpuMeter(ctx.target.pid);
      const result = await runLoad({
        port: ctx.target.port,
        connections: ctx.connections,
        durationMs: ctx.durationMs,
        warmupMs: 0,
        keepBodies: true,
        next: () => ({ method: "POST", path }),
        check(_status, body) {
          const value = Number(new TextDecoder().decode(body ?? undefined));
          if (!Number.isInteger(value)) return false;
          if (seen.has(value)) duplicates++;
          seen.add(value);
          if (value > highest) highest = value;
          return true;
        },
      });
      const cpu = meter.read();
      const final = Number((await request(ctx.target.port, "GET", path)).text);
      return {
        ...result,
        ...cpu,
        server_cpu_us_per_req: perRequest(cpu.server_cpu_s, result.ok),
        final,
        acknowledged: result.ok,
        duplicates,
        correct: final === result.ok && duplicates === 0 && highest === final,
      };
    },
  },
  {
    key: "kv",
    title: "kv: put of 100 keys in one call, then list 100, one instance",
    targets: DO_TARGETS,
    headline: [
      { metric: "put_rps", label: "put(100 keys) req/s", better: "higher" },
      { metric: "list_rps", label: "list(100) req/s", better: "higher" },
    ],
    async run(ctx) {
      const base = `/_do/kv/${ctx.runId}-hot`;
      const put = await runLoad({
        port: ctx.target.port,
        connections: ctx.connections,
        durationMs: ctx.durationMs,
        next: () => ({ method: "POST", path: `${base}/put?n=100` }),
      });
      let listKeys = -1;
      const list = await runLoad({
        port: ctx.target.port,
        connections: ctx.connections,
        durationMs: ctx.durationMs,
        keepBodies: true,
        next: () => ({ method: "GET", path: `${base}/list` }),
        check(_status, body) {
          if (listKeys === -1 && body) {
            listKeys = Object.keys(JSON.parse(new TextDecoder().decode(body))).length;
          }
          return true;
        },
      });
      return {
        put_rps: put.rps,
        put_keys_per_s: put.rps * 100,
        put_p50_ms: put.p50_ms,
        put_p99_ms: put.p99_ms,
        list_rps: list.rps,
        list_p50_ms: list.p50_ms,
        list_p99_ms: list.p99_ms,
        errors: put.errors + list.errors,
        correct: listKeys === 100,
      };
    },
  },
  {
    key: "sql",
    title: "sql: insert 10 rows per request, then select 20, one instance",
    targets: DO_TARGETS,
    headline: [
      { metric: "insert_rps", label: "insert(10 rows) req/s", better: "higher" },
      { metric: "select_rps", label: "select(20 rows) req/s", better: "higher" },
    ],
    async run(ctx) {
      const base = `/_do/sql/${ctx.runId}-hot`;
      const insert = await runLoad({
        port: ctx.target.port,
        connections: ctx.connections,
        durationMs: ctx.durationMs,
        next: () => ({ method: "POST", path: `${base}/insert?n=10` }),
      });
      const select = await runLoad({
        port: ctx.target.port,
        connections: ctx.connections,
        durationMs: ctx.durationMs,
        next: (conn, seq) => ({
          method: "GET",
          path: `${base}/select?from=${1 + ((conn + seq) % 500)}`,
        }),
      });
      const count = Number((await request(ctx.target.port, "GET", `${base}/count`)).text);
      return {
        insert_rps: insert.rps,
        insert_rows_per_s: insert.rps * 10,
        insert_p50_ms: insert.p50_ms,
        insert_p99_ms: insert.p99_ms,
        select_rps: select.rps,
        select_p50_ms: select.p50_ms,
        select_p99_ms: select.p99_ms,
        errors: insert.errors + select.errors,
        correct: count === insert.ok * 10,
      };
    },
  },
  {
    key: "chat",
    title: "chat: 100 WebSocket clients in one room, 20 messages each, broadcast to all",
    targets: DO_TARGETS,
    headline: [
      { metric: "delivered_per_s", label: "delivered msgs/s", better: "higher" },
      { metric: "p50_ms", label: "p50 ms", better: "lower" },
      { metric: "p99_ms", label: "p99 ms", better: "lower" },
    ],
    async run(ctx) {
      const meter = new CpuMeter(ctx.target.pid);
      const result = await runChat({
        url: `ws://127.0.0.1:${ctx.target.port}/_do/chat/${ctx.runId}-room`,
        clients: 100,
        messagesPerClient: 20,
        timeoutMs: 30_000,
      });
      const cpu = meter.read();
      return { ...result, ...cpu };
    },
  },
];

/** Each path once, spread over `connections` keep-alive connections. */
async function touchEach(
  port: number,
  paths: string[],
  method: string,
  connections: number,
): Promise<{ p50: number; p99: number; errors: number }> {
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  const deadline = performance.now() + 300_000;
  const worker = async () => {
    const conn = await HttpConnection.open("127.0.0.1", port);
    try {
      while (next < paths.length && performance.now() < deadline) {
        const path = paths[next++] ?? "/";
        const started = performance.now();
        try {
          const result = await conn.send(requestBytes(method, path, `127.0.0.1:${port}`));
          if (result.status < 200 || result.status >= 300) errors++;
        } catch {
          errors++;
          return;
        }
        latencies.push(performance.now() - started);
      }
    } finally {
      conn.close();
    }
  };
  await Promise.all(Array.from({ length: Math.min(connections, paths.length) }, worker));
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), errors };
}

/** `count` requests one after another on one connection, `gapMs` apart. */
async function sequential(
  port: number,
  count: number,
  pathOf: (i: number) => string,
  gapMs: number,
): Promise<{ p50: number; p99: number; perSecond: number; errors: number }> {
  const conn = await HttpConnection.open("127.0.0.1", port);
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  try {
    for (let i = 0; i < count; i++) {
      if (gapMs) await new Promise((resolve) => setTimeout(resolve, gapMs));
      const at = performance.now();
      const result = await conn.send(requestBytes("GET", pathOf(i), `127.0.0.1:${port}`));
      if (result.status !== 200) errors++;
      latencies.push(performance.now() - at);
    }
  } finally {
    conn.close();
  }
  const busyMs = performance.now() - started - gapMs * count;
  latencies.sort((a, b) => a - b);
  return {
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    perSecond: count / (busyMs / 1000),
    errors,
  };
}

/** Waits until RSS has not dropped by more than 1% for 5 s (or `maxMs` passed); returns it. */
async function waitForRssToSettle(
  pid: number,
  maxMs: number,
  log: (line: string) => void,
): Promise<number> {
  const deadline = Date.now() + maxMs;
  // Idle instances are stopped after about 10 s (workerd's eviction; dohost's --idle-timeout).
  await new Promise((resolve) => setTimeout(resolve, 12_000));
  let low = sampleTree(pid).rssKb;
  let lowAt = Date.now();
  while (Date.now() < deadline && Date.now() - lowAt < 5_000) {
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const rss = sampleTree(pid).rssKb;
    if (rss < low * 0.99) {
      low = rss;
      lowAt = Date.now();
    }
  }
  log(`  memory settled at ${(low / 1024).toFixed(1)} MB`);
  return low;
}

function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 1_000));
}

function perRequest(cpuSec: number, requests: number): number {
  return requests > 0 ? (cpuSec / requests) * 1e6 : 0;
}
