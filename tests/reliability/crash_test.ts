import assert from "node:assert/strict";
import { tempDataDir } from "./_child_server.ts";
import { seedFromEnv } from "./_prng.ts";
import { type CrashReport, runCrashCycles } from "./crash_harness.ts";

/** Cycles of the short run (`deno task test`); `deno task test:crash` runs the long one. */
const CYCLES = Number(Deno.env.get("DOHOST_CRASH_CYCLES") ?? "3");

function explain(report: CrashReport): string {
  return `seed ${report.seed} (replay with DOHOST_SEED=${report.seed}):\n` +
    report.problems.join("\n");
}

Deno.test("crash: acknowledged puts and transactions survive SIGKILL, and no transaction is partial", async () => {
  await using dir = await tempDataDir();
  const report = await runCrashCycles({ cycles: CYCLES, seed: seedFromEnv(), dataDir: dir.path });
  assert.deepEqual(report.problems, [], explain(report));
  assert.equal(report.cycles, CYCLES);
  assert.ok(report.acknowledgedPuts > 0, "some puts were acknowledged before the kills");
  assert.ok(report.acknowledgedTransactions > 0, "some transactions were acknowledged");
});
