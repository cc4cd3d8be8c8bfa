/**
 * `deno task soak`: the long soak (minutes, loopback only). Thousands of instances, hundreds
 * of WebSockets, redeploys and env changes during the traffic, in several rounds; after each
 * round the idle sweep must bring threads, descriptors and sockets back to the baseline and
 * idle memory must level off. Prints a summary, writes it to `docs/reliability.md`, exits 1
 * on problems.
 *
 *   deno task soak [--minutes 6] [--instances 3000] [--sockets 200] [--seed 1] [--no-docs]
 */

import { parseArgs } from "node:util";
import { print } from "../../src/log.ts";
import { environment, table, writeDocSection } from "./_docs.ts";
import { killChildrenOnSignal, tempDataDir } from "./_child_server.ts";
import { seedFromEnv } from "./_prng.ts";
import { type Resources, runSoak, type SoakReport } from "./soak_harness.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    minutes: { type: "string", default: "6" },
    instances: { type: "string", default: "3000" },
    sockets: { type: "string", default: "200" },
    seed: { type: "string" },
    "no-docs": { type: "boolean", default: false },
  },
});

async function main(): Promise<number> {
  killChildrenOnSignal();
  await using dir = await tempDataDir();
  const seed = values.seed === undefined ? seedFromEnv() : Number(values.seed);
  const report = await runSoak({
    dataDir: dir.path,
    seed,
    durationMs: Number(values.minutes) * 60_000,
    rounds: 4,
    instances: Number(values.instances),
    httpLoops: 16,
    sockets: Number(values.sockets),
    controlEveryMs: 20_000,
    maxInstances: 500,
    // Stops run one at a time (a few per second under load): hundreds of idle workers take minutes.
    drainLimitMs: 300_000,
    onProgress: print,
  });
  const summary = describe(report);
  print(summary);
  if (!values["no-docs"]) await writeDocSection("soak", summary);
  return report.problems.length === 0 ? 0 : 1;
}

Deno.exit(await main());

function describe(report: SoakReport): string {
  const figures = (label: string, r: Resources) => [
    label,
    r.threads ?? "n/a",
    r.fds ?? "n/a",
    r.sockets ?? "n/a",
    r.rssMib ?? "n/a",
  ];
  const kinds = (counts: Record<string, number>) =>
    Object.entries(counts).map(([kind, count]) => `- ${count} × ${kind}`).join("\n") || "- none";
  const verdict = report.problems.length === 0
    ? "**Passed**."
    : `**Failed**:\n\n${report.problems.map((problem) => `- ${problem}`).join("\n")}`;
  return [
    "## Soak (`deno task soak`)",
    "",
    `Last run: ${environment()}; seed ${report.seed}; ${
      Math.round(report.durationMs / 60_000)
    } min of traffic in ${report.idleAfterRound.length} rounds.`,
    "",
    table(["Traffic", "Count"], [
      ["HTTP requests", report.requests],
      ["distinct instances touched", report.instancesTouched],
      ["WebSocket sessions opened", report.socketsOpened],
      ["WebSocket messages echoed", report.socketMessages],
      ["redeploys and env changes during traffic", report.controlOps],
      ["latency p50 / p99 / max (ms)", latency(report)],
    ]),
    "",
    table(["Server process", "threads", "fds", "sockets", "RSS MiB"], [
      figures("baseline (after warm-up)", report.baseline),
      figures("peak during traffic", report.peak),
      ...report.idleAfterRound.map((r, i) => figures(`idle after round ${i + 1}`, r)),
    ]),
    "",
    "Expected errors (caused by the redeploys and env changes):",
    "",
    kinds(report.expected),
    "",
    "Unexpected errors:",
    "",
    kinds(report.unexpected),
    "",
    "Warnings and errors in the server log:",
    "",
    kinds(report.logSummary),
    "",
    verdict,
  ].join("\n");
}

function latency(report: SoakReport): string {
  const { p50, p99, max } = report.latencyMs;
  return [p50, p99, max].map((ms) => Math.round(ms)).join(" / ");
}
