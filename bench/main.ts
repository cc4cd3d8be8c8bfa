// deno-lint-ignore-file no-console -- a command-line tool: progress goes to stderr
/**
 * `deno task bench`: the side-by-side benchmark of dohost against workerd, miniflare and a bare
 * Deno server, all started by this script on loopback ports of this machine.
 *
 * For each repetition every target is started fresh (targets interleaved, so slow drifts of the
 * machine hit all of them), runs every scenario that applies to it, and is stopped. The result
 * is written as JSON (every run, plus median and spread per metric) and as one Markdown table
 * with the ratio dohost / peer for the headline metrics.
 *
 *   deno task bench [--reps 3] [--duration 5] [--targets dohost,workerd,miniflare,deno-bare]
 *                   [--only echo,counter] [--out bench/results] [--dohost-flags="--warm-workers 4"]
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { freshMemoryMsPer100Mb, machineBusySec, waitForQuiet } from "./lib/proc_stats.ts";
import { type BenchReport, markdownTable, type RunRecord, summarizeRuns } from "./lib/report.ts";
import { type Metrics, SCENARIOS } from "./lib/scenarios.ts";
import {
  installPeers,
  peerVersions,
  type RunningTarget,
  startTarget,
  type TargetName,
  TARGETS,
} from "./lib/targets.ts";
import { startTask } from "../tests/reliability/_child_server.ts";

const DOCS_PATH = join(dirname(dirname(fileURLToPath(import.meta.url))), "docs", "benchmarks.md");

const { values } = parseArgs({
  args: Deno.args,
  options: {
    reps: { type: "string", default: "3" },
    duration: { type: "string", default: "5" },
    connections: { type: "string", default: "64" },
    instances: { type: "string", default: "1000" },
    "cold-gap": { type: "string", default: "50" },
    targets: { type: "string", default: TARGETS.join(",") },
    only: { type: "string", default: "" },
    out: { type: "string", default: "bench/results" },
    "dohost-flags": { type: "string", default: "" },
    "max-other": { type: "string", default: "0.35" },
    "quiet-wait": { type: "string", default: "30" },
    retries: { type: "string", default: "1" },
    "dohost-dir": { type: "string" },
    docs: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

if (values.help) {
  console.log(
    "deno task bench [--reps N] [--duration SEC] [--connections N] [--instances N] " +
      "[--cold-gap MS] " +
      "[--targets a,b] " +
      "[--only scenario,…] [--out DIR] [--dohost-flags FLAGS] [--max-other CORES] " +
      "[--quiet-wait SEC] [--retries N] [--dohost-dir CHECKOUT] [--docs]\n" +
      "  --docs  also replace the generated section of docs/benchmarks.md with this run",
  );
  Deno.exit(0);
}

const reps = positive("reps");
const durationMs = positive("duration") * 1000;
const connections = positive("connections");
const instances = positive("instances");
const coldGapMs = positive("cold-gap");
const maxOther = Number(values["max-other"]);
const quietWaitMs = Number(values["quiet-wait"]) * 1000;
const retries = Number(values.retries);
const targets = values.targets.split(",").map((t) => t.trim()).filter(Boolean) as TargetName[];
for (const target of targets) {
  if (!TARGETS.includes(target)) throw new Error(`Unknown target ${target}`);
}
const only = values.only ? values.only.split(",").map((s) => s.trim()) : null;
const scenarios = SCENARIOS.filter((s) => !only || only.includes(s.key));
const dohostFlags = values["dohost-flags"].split(/\s+/).filter(Boolean);

function log(line: string): void {
  console.error(line);
}

function positive(
  name: "reps" | "duration" | "connections" | "instances" | "cold-gap",
): number {
  const value = Number(values[name]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be positive`);
  return value;
}

if (targets.some((t) => t === "workerd" || t === "miniflare")) await installPeers(log);

const startedAt = new Date();
const faultsAtStart = freshMemoryMsPer100Mb();
const stamp = startedAt.toISOString().replace(/[:.]/g, "-").slice(0, 19);
const outDir = values.out;
await Deno.mkdir(join(outDir, "logs"), { recursive: true });
const runs: RunRecord[] = [];
/** The server running now: stopped on Ctrl-C so no peer process is left behind. */
let current: Promise<RunningTarget> | null = null;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    log(`\n${signal}: stopping the server under test`);
    (current ?? Promise.reject()).then((target) => target.stop()).catch(() => {})
      .finally(() => Deno.exit(130));
  });
}
const commands: Record<string, string> = {};
let port = 18_700 + Math.floor(Math.random() * 500);

for (let rep = 1; rep <= reps; rep++) {
  // Rotate the order so no target always runs first (or last) in a repetition.
  const order = targets.map((_, i) => targets[(i + rep - 1) % targets.length] as TargetName);
  for (const name of order) {
    const applicable = scenarios.filter((s) => s.targets.includes(name));
    if (applicable.length === 0) continue;
    for (const scenario of applicable) {
      for (let attempt = 0; attempt <= retries; attempt++) {
        const record = await runOne(name, scenario.key, rep, attempt);
        const last = attempt === retries || !record.disturbed || record.error;
        if (last) {
          runs.push(record);
          break;
        }
        log(`  disturbed by other load; retrying ${name}/${scenario.key}`);
      }
    }
  }
}

async function runOne(
  name: TargetName,
  key: string,
  rep: number,
  attempt: number,
): Promise<RunRecord> {
  const scenario = SCENARIOS.find((s) => s.key === key);
  if (!scenario) throw new Error(`unknown scenario ${key}`);
  const workDir = await Deno.makeTempDir({ prefix: `dohost-bench-${name}-` });
  const logPath = join(outDir, "logs", `${stamp}-${name}-${rep}.log`);
  // A fresh server per scenario: no scenario sees instances, memory or files of another.
  let target: RunningTarget;
  try {
    current = startTarget(name, {
      port: port++,
      workDir,
      logPath,
      dohostFlags: [...(scenario.dohostFlags ?? []), ...dohostFlags],
      dohostDir: values["dohost-dir"],
    });
    target = await current;
  } catch (error) {
    current = null;
    const message = error instanceof Error ? error.message : String(error);
    log(`${name} failed to start: ${message}`);
    return { target: name, scenario: key, rep, metrics: {}, error: message, disturbed: false };
  }
  commands[name] = target.describe;
  try {
    const load = await waitForQuiet([target.pid, Deno.pid], maxOther, quietWaitMs);
    if (load >= maxOther) log(`  machine still busy (${load.toFixed(2)} cores), running anyway`);
    log(`rep ${rep} ${name} ${key}${attempt ? ` (retry ${attempt})` : ""}`);
    const busy0 = machineBusySec();
    const wall0 = performance.now();
    let metrics: Metrics;
    try {
      metrics = await scenario.run({
        target,
        runId: `r${rep}a${attempt}-${crypto.randomUUID().slice(0, 8)}`,
        durationMs,
        connections,
        instances,
        coldGapMs,
        log,
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log(`  ${name} ${key} failed: ${message}`);
      return { target: name, scenario: key, rep, metrics: {}, error: message, disturbed: false };
    }
    const wallS = (performance.now() - wall0) / 1000;
    const otherCores = typeof metrics.other_cpu_s === "number" && typeof metrics.wall_s === "number"
      ? metrics.other_cpu_s / Math.max(0.001, metrics.wall_s)
      : Math.max(0, (machineBusySec() - busy0) / wallS - 2);
    metrics.other_cores = otherCores;
    log(`  ${summaryLine(metrics, scenario.headline.map((h) => h.metric))}`);
    return {
      target: name,
      scenario: key,
      rep,
      metrics,
      disturbed: typeof metrics.other_cpu_s === "number" && otherCores > maxOther,
    };
  } finally {
    await target.stop();
    current = null;
  }
}

function summaryLine(metrics: Metrics, keys: string[]): string {
  return [...keys, "correct", "errors"]
    .filter((k) => k in metrics)
    .map((k) => {
      const v = metrics[k];
      return `${k}=${typeof v === "number" ? Number(v.toFixed(2)) : v}`;
    })
    .join(" ");
}

const report: BenchReport = {
  startedAt: startedAt.toISOString(),
  finishedAt: new Date().toISOString(),
  machine: await machine(),
  versions: await peerVersions(),
  commands: { ...commands, start_task: (await startTask()).line },
  options: {
    reps,
    durationMs,
    connections,
    instances,
    coldGapMs,
    targets,
    scenarios: scenarios.map((s) => s.key),
  },
  runs,
  summary: summarizeRuns(runs),
};
const table = markdownTable(report, targets);
const jsonPath = join(outDir, `${stamp}.json`);
const mdPath = join(outDir, `${stamp}.md`);
await Deno.writeTextFile(jsonPath, JSON.stringify(report, null, 2) + "\n");
await Deno.writeTextFile(
  mdPath,
  [
    `# dohost benchmark ${report.startedAt}`,
    "",
    `Machine: ${Object.entries(report.machine).map(([k, v]) => `${k} ${v}`).join("; ")}`,
    "",
    `Versions: ${Object.entries(report.versions).map(([k, v]) => `${k} ${v}`).join("; ")}`,
    "",
    `Options: ${reps} repetitions, ${durationMs / 1000} s per load phase, ` +
    `${connections} connections, ${instances} instances in the memory and spread scenarios, ` +
    `paced cold starts ${coldGapMs} ms apart`,
    "",
    "Each cell: median over the repetitions (± half the min–max range, in % of the median).",
    "",
    table,
    "",
  ].join("\n"),
);
console.log(table);
log(`\nwrote ${jsonPath} and ${mdPath}`);
if (values.docs) {
  await writeDocs(await Deno.readTextFile(mdPath));
  log(`updated ${DOCS_PATH}`);
}
// The signal listeners would keep the process alive.
Deno.exit(0);

/** Replaces the text between the bench markers of docs/benchmarks.md with `section`. */
async function writeDocs(section: string): Promise<void> {
  const begin = "<!-- bench:begin (generated by `deno task bench --docs`) -->";
  const end = "<!-- bench:end -->";
  const body = section.replace(/^# .*\n/, "").trim();
  let doc = await Deno.readTextFile(DOCS_PATH).catch(() => `# Benchmarks\n\n${begin}\n${end}\n`);
  const from = doc.indexOf(begin);
  const to = doc.indexOf(end);
  if (from < 0 || to < from) doc = `${doc.trimEnd()}\n\n${begin}\n${end}\n`;
  const start = doc.indexOf(begin) + begin.length;
  doc = `${doc.slice(0, start)}\n\n${body}\n\n${doc.slice(doc.indexOf(end))}`;
  await Deno.writeTextFile(DOCS_PATH, doc);
}

async function machine(): Promise<Record<string, string>> {
  const faultsAtEnd = freshMemoryMsPer100Mb();
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? "unknown";
  const mem = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const totalKb = Number(/MemTotal:\s*(\d+)/.exec(mem)?.[1] ?? 0);
  const kernel = await Deno.readTextFile("/proc/sys/kernel/osrelease").catch(() => "");
  return {
    cpu: model.trim(),
    cores: String(navigator.hardwareConcurrency),
    memory: `${Math.round(totalKb / 1024 / 1024)} GiB`,
    kernel: kernel.trim(),
    "fresh memory (ms per 100 MB, start/end)": `${faultsAtStart.toFixed(0)}/${
      faultsAtEnd.toFixed(0)
    }`,
  };
}
