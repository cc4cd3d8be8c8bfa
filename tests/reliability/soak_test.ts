import assert from "node:assert/strict";
import { tempDataDir } from "./_child_server.ts";
import { seedFromEnv } from "./_prng.ts";
import { runSoak } from "./soak_harness.ts";

Deno.test("soak (short): mixed traffic with redeploys leaks no workers, descriptors or sockets", async () => {
  await using dir = await tempDataDir();
  const report = await runSoak({
    dataDir: dir.path,
    seed: seedFromEnv(),
    durationMs: 8_000,
    instances: 30,
    httpLoops: 4,
    sockets: 8,
    controlEveryMs: 2_500,
    maxInstances: 20,
  });
  assert.deepEqual(report.problems, [], `seed ${report.seed}: ${JSON.stringify(report, null, 1)}`);
  assert.ok(report.requests > 0, "HTTP requests were served");
  assert.ok(report.controlOps > 0, "redeploys and env changes ran during the traffic");
});
