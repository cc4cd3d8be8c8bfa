import assert from "node:assert/strict";
import { fixture } from "../_helpers.ts";
import { type ChildServer, spawnServer, tempDataDir } from "./_child_server.ts";

/** Small limits so the faults end quickly; a bystander instance must not notice them. */
const FLAGS = ["--cpu-limit-ms", "2000", "--memory-limit-mb", "64"];

interface Outcome {
  status: number;
  code: string | null;
  /** Bystander answers that arrived while the fault's request was still open. */
  overlapping: number;
}

async function started(server: ChildServer, id: string): Promise<string> {
  const res = await server.fetch(`/_do/fault/${id}/started`);
  if (res.status !== 200) assert.fail(`${id}/started answered ${res.status}: ${await res.text()}`);
  return (await res.json() as { started: string }).started;
}

async function stored(server: ChildServer, id: string): Promise<unknown> {
  const res = await server.fetch(`/_do/fault/${id}/get?k=kept`);
  assert.equal(res.status, 200, `${id}/get answered ${res.status}`);
  return (await res.json() as { value: unknown }).value;
}

/**
 * Starts the fault on `victim` and keeps the bystander busy until the fault's request
 * settles; every bystander answer must be a 200 from the same, untouched instance.
 */
async function provoke(server: ChildServer, victim: string, fault: string): Promise<Outcome> {
  const put = await server.fetch(`/_do/fault/${victim}/put?k=kept&v=safe`, { method: "POST" });
  assert.equal(put.status, 200);
  let settled = false;
  const faulty = server.fetch(`/_do/fault/${victim}/${fault}`, { timeoutMs: 60_000 })
    .finally(() => settled = true);
  const bystander = await started(server, "bystander");
  let overlapping = 0;
  while (!settled) {
    assert.equal(await started(server, "bystander"), bystander, "the bystander was not restarted");
    if (!settled) overlapping++;
  }
  const res = await faulty;
  await res.body?.cancel();
  return { status: res.status, code: res.headers.get("x-dohost-error"), overlapping };
}

Deno.test("worker faults: a crashing instance takes down only itself and keeps its storage", async (t) => {
  await using dir = await tempDataDir();
  await using server = await spawnServer({ dataDir: dir.path, flags: FLAGS });
  await server.deploy("fault", await fixture("fault_do.ts"));
  const bystander = await started(server, "bystander");

  await t.step(
    "an infinite loop is stopped by the CPU limit while others keep answering",
    async () => {
      const before = await started(server, "v-loop");
      const outcome = await provoke(server, "v-loop", "loop");
      assert.equal(outcome.status, 503);
      assert.equal(outcome.code, "CPU_LIMIT_EXCEEDED");
      assert.ok(outcome.overlapping > 0, "another instance answered while the loop was running");
      assert.notEqual(
        await started(server, "v-loop"),
        before,
        "the next request gets a fresh instance",
      );
      assert.equal(await stored(server, "v-loop"), "safe");
      await server.waitForLog(/CPU time limit.*instance="v-loop"/);
    },
  );

  await t.step("running out of memory resets only that instance", async () => {
    const before = await started(server, "v-oom");
    const outcome = await provoke(server, "v-oom", "oom");
    assert.equal(outcome.status, 503);
    assert.equal(outcome.code, "MEMORY_LIMIT_EXCEEDED");
    assert.notEqual(await started(server, "v-oom"), before);
    assert.equal(await stored(server, "v-oom"), "safe");
    await server.waitForLog(/memory limit.*instance="v-oom"/);
  });

  await t.step(
    "an uncaught error in a timer is logged and keeps the instance (as on Cloudflare)",
    async () => {
      const before = await started(server, "v-timer");
      const outcome = await provoke(server, "v-timer", "timer-throw");
      assert.equal(outcome.status, 200, "the response left before the timer fired");
      await server.waitForLog(/boom in a timer.*instance="v-timer"/);
      assert.equal(await started(server, "v-timer"), before);
      assert.equal(await stored(server, "v-timer"), "safe");
    },
  );

  await t.step("a stack overflow is an exception of that request only", async () => {
    const before = await started(server, "v-stack");
    const outcome = await provoke(server, "v-stack", "stack");
    assert.equal(outcome.status, 500);
    assert.equal(outcome.code, "USER_EXCEPTION");
    assert.equal(await started(server, "v-stack"), before, "an exception keeps the instance");
    assert.equal(await stored(server, "v-stack"), "safe");
  });

  await t.step("self.close() from user code ends at most its own instance", async () => {
    const outcome = await provoke(server, "v-close", "self-close");
    assert.ok(outcome.status >= 500, `self.close() answered ${outcome.status}`);
    assert.equal(await stored(server, "v-close"), "safe");
  });

  assert.equal(await started(server, "bystander"), bystander, "the bystander survived every fault");
  const health = await server.fetch("/healthz");
  assert.equal(health.status, 200);
});

Deno.test({
  name: "worker faults: an unhandled rejection is logged and keeps the instance (as on Cloudflare)",
  async fn() {
    await using dir = await tempDataDir();
    await using server = await spawnServer({ dataDir: dir.path, flags: FLAGS });
    await server.deploy("fault", await fixture("fault_do.ts"));
    const before = await started(server, "v-reject");
    const outcome = await provoke(server, "v-reject", "reject");
    assert.equal(outcome.status, 200);
    await server.waitForLog(/unhandled rejection/);
    assert.equal(await started(server, "v-reject"), before);
  },
});
