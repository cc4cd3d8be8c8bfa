/**
 * `deno task test:crash`: the long crash run. Kills the server with SIGKILL `--cycles` times
 * (default 20, or `DOHOST_CRASH_CYCLES`) under concurrent puts, multi-key transactions and
 * alarms, checks every acknowledged write after each restart, prints a summary and writes it
 * to `docs/reliability.md`. Exits 1 when durability did not hold.
 *
 *   deno task test:crash [--cycles 50] [--seed 123] [--no-docs]
 */

import { parseArgs } from "node:util";
import { print } from "../../src/log.ts";
import { environment, table, writeDocSection } from "./_docs.ts";
import { killChildrenOnSignal, tempDataDir } from "./_child_server.ts";
import { seedFromEnv } from "./_prng.ts";
import { type CrashReport, runCrashCycles } from "./crash_harness.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    cycles: { type: "string", default: Deno.env.get("DOHOST_CRASH_CYCLES") ?? "20" },
    seed: { type: "string" },
    "no-docs": { type: "boolean", default: false },
  },
});
const cycles = Number(values.cycles);
const seed = values.seed === undefined ? seedFromEnv() : Number(values.seed);
if (!Number.isInteger(cycles) || cycles < 1) {
  throw new TypeError(`Invalid --cycles ${values.cycles}`);
}

async function main(): Promise<number> {
  killChildrenOnSignal();
  await using dir = await tempDataDir();
  print(`crash run: ${cycles} cycles, seed ${seed}`);
  const report = await runCrashCycles({
    cycles,
    seed,
    dataDir: dir.path,
    instances: 4,
    alarms: true,
    onProgress: print,
  });
  const summary = describe(report);
  print(summary);
  if (!values["no-docs"]) await writeDocSection("crash", summary);
  return report.problems.length === 0 ? 0 : 1;
}

Deno.exit(await main());

function describe(report: CrashReport): string {
  const verdict = report.problems.length === 0
    ? "**Passed**: every acknowledged write, transaction and alarm survived."
    : `**Failed**:\n\n${report.problems.map((problem) => `- ${problem}`).join("\n")}`;
  return [
    "## Crash run (`deno task test:crash`)",
    "",
    `Last run: ${environment()}; seed ${report.seed} (replay with \`--seed ${report.seed}\`).`,
    "",
    table(["What", "Count"], [
      ["SIGKILL/restart cycles", report.cycles],
      ["acknowledged puts", report.acknowledgedPuts],
      ["acknowledged multi-key transactions", report.acknowledgedTransactions],
      ["acknowledged balance transfers", report.acknowledgedTransfers],
      ["acknowledged alarms (all fired after restart)", report.acknowledgedAlarms],
      ["writes in flight at a kill", report.inFlightAtKill],
      ["… of which committed (allowed either way)", report.inFlightCommitted],
      ["wall time", `${Math.round(report.elapsedMs / 1000)} s`],
    ]),
    "",
    verdict,
  ].join("\n");
}
