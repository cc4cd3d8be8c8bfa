import assert from "node:assert/strict";
import { tempDataDir } from "./_child_server.ts";
import { seedFromEnv } from "./_prng.ts";
import { runCrashCycles } from "./crash_harness.ts";

/** Cycles of the short run (`deno task test`); `deno task test:crash` runs the long one. */
const CYCLES = Number(Deno.env.get("DOHOST_CRASH_CYCLES") ?? "3");

Deno.test("crash: acknowledged puts, transactions and alarms survive SIGKILL; no transaction is partial", async () => {
  await using dir = await tempDataDir();
  const report = await runCrashCycles({
    cycles: CYCLES,
    seed: seedFromEnv(),
    dataDir: dir.path,
    instances: 2,
    alarms: true,
  });
  const replay = `seed ${report.seed} (replay with DOHOST_SEED=${report.seed})`;
  assert.deepEqual(report.problems, [], `${replay}:\n${report.problems.join("\n")}`);
  assert.equal(report.cycles, CYCLES);
  assert.ok(report.acknowledgedPuts > 0, `${replay}: some puts were acknowledged before the kills`);
  assert.ok(report.acknowledgedTransactions > 0, `${replay}: some transactions were acknowledged`);
  assert.equal(report.acknowledgedAlarms, CYCLES, `${replay}: one alarm per cycle, all fired`);
});
