/**
 * The server's memory guard (`--max-server-memory-mb`, `src/memory_guard.ts`). A synchronous
 * loop filling buffers never yields, so the instance's own memory check never runs; the guard
 * sees the process's RSS pass the budget and stops the instance that is burning CPU. A child
 * process, so that its RSS is the server's alone (test files share one process).
 */

import assert from "node:assert/strict";
import { fixture } from "../_helpers.ts";
import { type ChildServer, processStats, spawnServer, tempDataDir } from "./_child_server.ts";

/** Well above an idle server with a few instances (about 250 MB), far below the machine. */
const BUDGET_MB = 1024;

async function text(server: ChildServer, path: string): Promise<string> {
  const res = await server.fetch(path);
  assert.equal(res.status, 200, path);
  return await res.text();
}

Deno.test("server memory: a synchronous allocation loop is stopped when the server passes its budget", async () => {
  await using dir = await tempDataDir();
  await using server = await spawnServer({
    dataDir: dir.path,
    flags: ["--max-server-memory-mb", String(BUDGET_MB)],
  });
  await server.deploy("limits", await fixture("limits_do.ts"));
  assert.equal(await text(server, "/_do/limits/bystander/ok"), "ok");
  const idle = (await processStats(server.pid)).rssMib;
  assert.ok(idle === null || idle < BUDGET_MB / 2, `idle server RSS ${idle} MB`);

  const res = await server.fetch("/_do/limits/hog/alloc-buffers", { timeoutMs: 60_000 });
  await res.body?.cancel();
  assert.equal(res.status, 503);
  assert.equal(res.headers.get("x-dohost-error"), "MEMORY_LIMIT_EXCEEDED");
  await server.waitForLog(
    new RegExp(`over its budget of ${BUDGET_MB} MB: stopping .*instance="hog"`),
  );

  assert.equal(await text(server, "/_do/limits/bystander/ok"), "ok", "the other instance answers");
  assert.equal(await text(server, "/_do/limits/hog/ok"), "ok", "the next request starts afresh");
  assert.deepEqual(await (await server.fetch("/healthz")).json(), { ok: true });
  const metrics = await (await server.api("GET", "/metrics")).text();
  assert.match(
    metrics,
    /dohost_instance_memory_stops_total\{app="app_default",class="limits",cause="server"\} 1/,
  );
});
