/**
 * The soak: a real server process under mixed traffic for a bounded time, on loopback only.
 *
 * HTTP loops touch many instances (more than `--max-instances`, so eviction runs), WebSocket
 * clients keep sockets open and echo messages, and a control loop redeploys the class and
 * changes env vars while all of that runs. Afterwards the harness waits for the idle sweep
 * and compares the process with its baseline: threads (one per worker), file descriptors,
 * sockets and resident memory. Errors are counted by kind; the ones a redeploy causes by
 * design (a socket closed with 1012, a request that was running in a stopped instance) are
 * expected, everything else is a problem.
 */

import { fixture } from "../_helpers.ts";
import { type ChildServer, type ProcessStats, processStats, spawnServer } from "./_child_server.ts";
import { Prng } from "./_prng.ts";

/** Options for {@linkcode runSoak}. */
export interface SoakOptions {
  dataDir: string;
  seed: number;
  durationMs: number;
  /** Distinct instance ids the HTTP loops pick from. */
  instances: number;
  httpLoops: number;
  sockets: number;
  /** Time between control operations (redeploy or env change). */
  controlEveryMs: number;
  /** Traffic phases, each followed by the idle sweep and a measurement (default 1). */
  rounds?: number;
  /** Passed as `--max-instances`. */
  maxInstances: number;
  /** Extra environment for the server process. */
  env?: Record<string, string>;
  /** How long the idle sweep may take to stop everything after a round (default 30 s). */
  drainLimitMs?: number;
  onProgress?(line: string): void;
}

/** Resource figures of the server process. */
export type Resources = ProcessStats;

/** What a soak saw. */
export interface SoakReport {
  seed: number;
  durationMs: number;
  requests: number;
  instancesTouched: number;
  socketsOpened: number;
  socketMessages: number;
  controlOps: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** Error kinds by count: expected ones and problems. */
  expected: Record<string, number>;
  unexpected: Record<string, number>;
  baseline: Resources;
  peak: Resources;
  after: Resources;
  /** Ms the idle sweep took to stop every instance after the traffic ended (last round). */
  drainMs: number;
  /** The process once idle after each round: memory must level off, not keep growing. */
  idleAfterRound: Resources[];
  /** Distinct warning and error log messages (instance names removed) with their counts. */
  logSummary: Record<string, number>;
  problems: string[];
}

/** Error codes a redeploy or env change may cause in requests that were in flight. */
const EXPECTED_CODES = new Set(["WORKER_GONE", "REDEPLOYED", "SHUTTING_DOWN"]);
/** A request or socket echo taking longer than this counts as stalled (a problem). */
const STALL_MS = 60_000;
/** How long after a control operation a failed socket still counts as caused by it. */
const REDEPLOY_WINDOW_MS = 2_000;
/** Close codes a client socket may see: normal, going away, service restart (redeploy). */
const EXPECTED_CLOSES = new Set([1000, 1001, 1012]);

/** Runs the soak and returns its report; `problems` is empty when everything held. */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const log = options.onProgress ?? (() => {});
  const server = await spawnServer({
    dataDir: options.dataDir,
    flags: ["--idle-timeout", "2", "--max-instances", String(options.maxInstances)],
    env: options.env,
  });
  const report = emptyReport(options);
  try {
    await server.deploy("echo", await fixture("echo_do.ts"));
    await touch(server, "warm-up");
    report.baseline = await processStats(server.pid);
    log(`baseline ${JSON.stringify(report.baseline)}`);
    const rounds = options.rounds ?? 1;
    const traffic = new Traffic(server, options, report);
    for (let round = 1; round <= rounds; round++) {
      await traffic.run(options.durationMs / rounds);
      report.drainMs = await drain(server, report.baseline, options.drainLimitMs ?? 30_000);
      report.after = await processStats(server.pid);
      report.idleAfterRound.push(report.after);
      log(
        `round ${round}/${rounds}: ${report.requests} requests, ${report.socketMessages} ` +
          `socket messages; idle ${JSON.stringify(report.after)} after ${report.drainMs} ms`,
      );
    }
    traffic.finish();
    judge(report, server.logs());
    const stopped = await server.kill("SIGTERM");
    if (stopped.code !== 0) report.problems.push(`graceful stop exited with ${stopped.code}`);
  } finally {
    await server.kill("SIGKILL");
  }
  return report;
}

function emptyReport(options: SoakOptions): SoakReport {
  const none: Resources = { threads: null, fds: null, sockets: null, rssMib: null };
  return {
    seed: options.seed,
    durationMs: options.durationMs,
    requests: 0,
    instancesTouched: 0,
    socketsOpened: 0,
    socketMessages: 0,
    controlOps: 0,
    latencyMs: { p50: 0, p99: 0, max: 0 },
    expected: {},
    unexpected: {},
    baseline: none,
    peak: none,
    after: none,
    drainMs: 0,
    idleAfterRound: [],
    logSummary: {},
    problems: [],
  };
}

/** The traffic of one soak: HTTP loops, sockets and the control loop until the deadline. */
class Traffic {
  readonly #server: ChildServer;
  readonly #options: SoakOptions;
  readonly #report: SoakReport;
  readonly #prng: Prng;
  readonly #latencies: number[] = [];
  readonly #touched = new Set<number>();
  /** Its own connection pool, closed at the end so no client keeps a socket of the server. */
  #client = Deno.createHttpClient({});
  #deadline = 0;
  #lastControl = 0;
  #sampling: Promise<void> | null = null;
  #controlBusy = false;

  constructor(server: ChildServer, options: SoakOptions, report: SoakReport) {
    this.#server = server;
    this.#options = options;
    this.#report = report;
    this.#prng = new Prng(options.seed);
  }

  /** One phase of traffic lasting `ms`. */
  async run(ms: number): Promise<void> {
    this.#deadline = Date.now() + ms;
    const sampler = setInterval(
      () => this.#sampling ??= this.#samplePeak().finally(() => this.#sampling = null),
      1_000,
    );
    try {
      await Promise.all([
        ...Array.from({ length: this.#options.httpLoops }, () => this.#httpLoop()),
        ...Array.from({ length: this.#options.sockets }, (_, i) => this.#socketLoop(i)),
        this.#controlLoop(),
      ]);
    } finally {
      clearInterval(sampler);
      await this.#sampling;
      // Dropping the pool's connections lets the server's socket count return to baseline.
      this.#client.close();
      this.#client = Deno.createHttpClient({});
    }
  }

  /** Fills in the latency and coverage figures; closes the connection pool. */
  finish(): void {
    this.#client.close();
    this.#latencies.sort((a, b) => a - b);
    const at = (q: number) => this.#latencies[Math.floor(q * (this.#latencies.length - 1))] ?? 0;
    this.#report.latencyMs = { p50: at(0.5), p99: at(0.99), max: at(1) };
    this.#report.instancesTouched = this.#touched.size;
  }

  async #samplePeak(): Promise<void> {
    const now = await processStats(this.#server.pid);
    const peak = this.#report.peak;
    const max = (a: number | null, b: number | null) => a === null ? b : Math.max(a, b ?? a);
    this.#report.peak = {
      threads: max(now.threads, peak.threads),
      fds: max(now.fds, peak.fds),
      sockets: max(now.sockets, peak.sockets),
      rssMib: max(now.rssMib, peak.rssMib),
    };
  }

  async #httpLoop(): Promise<void> {
    while (Date.now() < this.#deadline) {
      const id = this.#prng.int(0, this.#options.instances - 1);
      this.#touched.add(id);
      const started = performance.now();
      const stall = new AbortController();
      const watchdog = setTimeout(() => stall.abort(), STALL_MS);
      try {
        const res = await fetch(`${this.#server.url}/_do/echo/soak-${id}`, {
          method: "POST",
          body: "x".repeat(this.#prng.int(0, 256)),
          client: this.#client,
          signal: stall.signal,
        });
        await res.body?.cancel();
        this.#latencies.push(performance.now() - started);
        this.#report.requests++;
        if (res.status !== 200) {
          this.#count(`http ${res.status} ${res.headers.get("x-dohost-error")}`);
        }
      } catch (error) {
        const why = stall.signal.aborted
          ? `no answer within ${STALL_MS} ms`
          : error instanceof Error
          ? error.message
          : String(error);
        this.#count(`http failed: ${why}`, false);
      } finally {
        clearTimeout(watchdog);
      }
    }
  }

  /** Keeps one socket open, echoing a message every few hundred ms; reopens after 1012. */
  async #socketLoop(index: number): Promise<void> {
    while (Date.now() < this.#deadline) {
      const outcome = await this.#socketSession(`ws-${index % 50}`);
      if (outcome !== null) this.#count(outcome, false);
    }
  }

  #socketSession(id: string): Promise<string | null> {
    const url = this.#server.url.replace("http://", "ws://") + `/_do/echo/${id}`;
    const socket = new WebSocket(url);
    this.#report.socketsOpened++;
    return new Promise<string | null>((resolve) => {
      let pending: string | null = null;
      let closedByUs = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      // Every handshake and every echo must arrive within STALL_MS.
      let watchdog = setTimeout(() => stalled("no handshake"), STALL_MS);
      const stalled = (what: string) => {
        closedByUs = true;
        socket.close(1000, "stalled");
        resolve(`ws ${what} within ${STALL_MS} ms on ${id}`);
      };
      const next = () => {
        if (Date.now() >= this.#deadline) {
          closedByUs = true;
          socket.close(1000, "soak over");
          return;
        }
        pending = crypto.randomUUID();
        socket.send(pending);
        clearTimeout(watchdog);
        watchdog = setTimeout(() => stalled("no echo"), STALL_MS);
      };
      let opened = false;
      socket.onopen = () => {
        opened = true;
        next();
      };
      socket.onmessage = (event) => {
        if (event.data !== pending) {
          socket.close(1000);
          resolve(`ws echo mismatch on ${id}`);
          return;
        }
        this.#report.socketMessages++;
        clearTimeout(watchdog);
        timer = setTimeout(next, this.#prng.int(50, 400));
      };
      socket.onerror = () => {};
      socket.onclose = (event) => {
        clearTimeout(timer);
        clearTimeout(watchdog);
        const what = opened
          ? `ws closed ${event.code} ${event.reason}`.trim()
          : "ws handshake failed";
        if (closedByUs) {
          resolve(null);
        } else if (opened && EXPECTED_CLOSES.has(event.code)) {
          this.#count(what, true);
          resolve(null);
        } else if (this.#controlBusy || Date.now() - this.#lastControl < REDEPLOY_WINDOW_MS) {
          // A redeploy stops the instance: sockets and handshakes caught in it may fail.
          this.#count(`${what} (during a redeploy)`, true);
          resolve(null);
        } else {
          resolve(what);
        }
      };
    });
  }

  async #controlLoop(): Promise<void> {
    const code = await fixture("echo_do.ts");
    let op = 0;
    while (Date.now() + this.#options.controlEveryMs < this.#deadline) {
      await new Promise((resolve) => setTimeout(resolve, this.#options.controlEveryMs));
      op++;
      this.#controlBusy = true;
      try {
        await this.#controlOp(op, code);
      } catch (error) {
        this.#count(
          `control op ${op % 3} failed: ${error instanceof Error ? error.message : error}`,
          false,
        );
      }
      this.#lastControl = Date.now();
      this.#controlBusy = false;
      this.#report.controlOps++;
    }
  }

  /** One control operation: a redeploy, an env var set, or an env var deleted. */
  async #controlOp(op: number, code: string): Promise<void> {
    const env = "/v1/app_default/durable-objects/env/SOAK_REV";
    const res = op % 3 === 0
      ? await this.#server.api("POST", "/v1/app_default/durable-objects", {
        name: "echo",
        code: code + `\n// revision ${op}\n`,
        access_mode: "public",
      })
      : op % 3 === 1
      ? await this.#server.api("PUT", env, { value: String(op) })
      : await this.#server.api("DELETE", env);
    await res.body?.cancel();
    if (res.status !== 200) this.#count(`control op ${op % 3} answered ${res.status}`, false);
  }

  #count(kind: string, expected?: boolean): void {
    const code = kind.split(" ").pop() ?? "";
    const isExpected = expected ?? EXPECTED_CODES.has(code);
    const bucket = isExpected ? this.#report.expected : this.#report.unexpected;
    bucket[kind] = (bucket[kind] ?? 0) + 1;
  }
}

/**
 * Waits until the idle sweep stopped every worker: threads, descriptors and sockets back near
 * the baseline (the server also has to notice the closed client connections).
 */
async function drain(server: ChildServer, baseline: Resources, limitMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < limitMs) {
    const now = await processStats(server.pid);
    const threadsBack = now.threads === null ||
      now.threads <= (baseline.threads ?? 0) + THREAD_SLACK;
    const socketsBack = now.sockets === null || now.sockets <= (baseline.sockets ?? 0) + 2;
    const fdsBack = now.fds === null || now.fds <= (baseline.fds ?? 0) + FD_SLACK;
    if (threadsBack && socketsBack && fdsBack) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return Date.now() - started;
}

/** Threads above the baseline that still count as "back" (runtime pools grow a little). */
const THREAD_SLACK = 4;
/**
 * Resident memory is "near its baseline" within this factor plus {@linkcode MEMORY_SLACK_MIB}:
 * the allocator keeps pages that hundreds of short-lived worker heaps used, so RSS levels off
 * above the cold-start figure instead of returning to it (see `idleAfterRound` for growth).
 */
const MEMORY_FACTOR = 3;
const MEMORY_SLACK_MIB = 64;
/** Descriptors above the baseline that still count as "back" (lazily opened files). */
const FD_SLACK = 8;

function judge(report: SoakReport, logs: string): void {
  const { baseline, after, problems } = report;
  for (const line of logs.split("\n")) {
    const match = / (WARN|ERROR) (.*?)(?: app=| instance=|$)/.exec(line);
    if (match) {
      const key = `${match[1]} ${match[2]}`.slice(0, 160);
      report.logSummary[key] = (report.logSummary[key] ?? 0) + 1;
    }
  }
  if (Object.keys(report.unexpected).length) {
    problems.push(`unexpected errors: ${JSON.stringify(report.unexpected)}`);
  }
  if (after.threads !== null && baseline.threads !== null) {
    if (after.threads > baseline.threads + THREAD_SLACK) {
      problems.push(
        `threads ${after.threads} after vs ${baseline.threads} before (leaked workers)`,
      );
    }
  }
  if (after.fds !== null && baseline.fds !== null && after.fds > baseline.fds + FD_SLACK) {
    problems.push(`file descriptors ${after.fds} after vs ${baseline.fds} before`);
  }
  if (after.sockets !== null && baseline.sockets !== null && after.sockets > baseline.sockets + 2) {
    problems.push(`sockets ${after.sockets} after vs ${baseline.sockets} before`);
  }
  if (after.rssMib !== null && baseline.rssMib !== null) {
    if (after.rssMib > baseline.rssMib * MEMORY_FACTOR + MEMORY_SLACK_MIB) {
      problems.push(`resident memory ${after.rssMib} MiB after vs ${baseline.rssMib} MiB before`);
    }
  }
  // Growth: the first round warms the allocator up; after that, idle memory must level off.
  const middle = report.idleAfterRound.slice(1, -1).map((r) => r.rssMib ?? 0);
  if (middle.length > 0 && after.rssMib !== null) {
    const plateau = Math.max(...middle);
    if (after.rssMib > plateau * 1.25 + MEMORY_SLACK_MIB) {
      problems.push(`idle memory keeps growing: ${middle.join(", ")} MiB, then ${after.rssMib}`);
    }
  }
  const errors = logs.split("\n").filter((line) =>
    / ERROR /.test(line) || /^error: /.test(line) || /Unhandled error/.test(line)
  );
  if (errors.length) problems.push(`error log lines: ${errors.slice(0, 5).join(" | ")}`);
}

async function touch(server: ChildServer, id: string): Promise<void> {
  const res = await server.fetch(`/_do/echo/${id}`);
  await res.body?.cancel();
  if (res.status !== 200) throw new Error(`warm-up request answered ${res.status}`);
}
