/**
 * WorkerPool with real workers: it keeps its size of booted workers, hands them out only for
 * matching limits, refills after a take, and a pooled worker becomes a working instance.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { InstanceInit } from "../workers/protocol.ts";
import { bundleSource } from "../src/bundler.ts";
import { WorkerHost, type WorkerHostOptions } from "../src/worker_host.ts";
import { WorkerPool } from "../src/worker_pool.ts";
import { ThreadSpawner } from "../src/thread_spawner.ts";
import { waitFor } from "./e2e/_wait.ts";

const COUNTER = `import { DurableObject } from "cloudflare:workers";
export class Counter extends DurableObject {
  async fetch() {
    const n = ((await this.ctx.storage.get("n")) ?? 0) + 1;
    await this.ctx.storage.put("n", n);
    return new Response(String(n));
  }
}
`;

async function counterInit(dbPath: string): Promise<InstanceInit> {
  return {
    appId: "app_test",
    className: "counter",
    code: (await bundleSource(COUNTER)).code,
    exportName: "Counter",
    idHex: "b".repeat(64),
    name: "pooled",
    dbPath,
    env: {},
    bindings: [],
    maxKeyBytes: 2048,
    maxValueBytes: 131072,
    sockets: [],
    autoResponse: null,
    eventTimeoutMs: null,
    nextSockId: 1,
  };
}

/** A pool whose spawns are recorded, so the test can clean up every worker it made. */
function recordingPool(
  spawner: ThreadSpawner,
  size: number,
): { pool: WorkerPool; spawned: WorkerHost[] } {
  const spawned: WorkerHost[] = [];
  const pool = new WorkerPool({
    size,
    host: { spawner, memoryLimitMb: 64 },
    spawn(options: WorkerHostOptions) {
      const host = new WorkerHost(options);
      spawned.push(host);
      return host;
    },
  });
  return { pool, spawned };
}

Deno.test("WorkerPool keeps its size of booted workers and refills after a take", async () => {
  const spawner = new ThreadSpawner();
  const { pool, spawned } = recordingPool(spawner, 2);
  try {
    await waitFor(() => Promise.resolve(pool.stats), (s) => s.spawned === 2 && s.idle === 2, {
      what: "two pooled workers",
    });
    await Promise.all(spawned.map((host) => host.booted));

    const taken = pool.take({ memoryLimitMb: 64, cpuLimitMs: 1000 });
    assert.ok(taken, "a pooled worker");
    assert.equal(taken.exited, false);
    assert.equal(pool.stats.taken, 1);
    await waitFor(() => Promise.resolve(pool.stats), (s) => s.spawned === 3 && s.idle === 2, {
      what: "the pool to refill",
    });

    assert.equal(pool.take({ memoryLimitMb: 32 }), null, "other limits get no pooled worker");
    assert.equal(pool.stats.taken, 1);
  } finally {
    await pool.close();
    for (const host of spawned) await host.terminate();
    await spawner.close();
  }
  assert.ok(spawned.every((host) => host.exited));
  assert.equal(pool.take({ memoryLimitMb: 64 }), null, "a closed pool hands out nothing");
});

Deno.test("WorkerPool: a pooled worker becomes an instance that serves requests", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dohost-worker-pool-" });
  const spawner = new ThreadSpawner();
  const { pool, spawned } = recordingPool(spawner, 1);
  try {
    const host = pool.take({ memoryLimitMb: 64 });
    assert.ok(host, "a pooled worker, even one still booting");
    host.init(await counterInit(join(dir, "pooled.sqlite")), {
      onMessage() {},
      onExit() {},
    });
    const fetch = {
      type: "fetch" as const,
      req: { url: "http://localhost/", method: "POST", headers: [], body: null },
    };
    for (const expected of ["1", "2"]) {
      const answer = await host.request(fetch);
      assert.equal(answer.type, "response", JSON.stringify(answer));
      if (answer.type === "response") {
        assert.equal(new TextDecoder().decode(answer.res.body ?? new ArrayBuffer(0)), expected);
      }
    }
    await host.stop("shutdown");
  } finally {
    await pool.close();
    for (const host of spawned) await host.terminate();
    await spawner.close();
    await Deno.remove(dir, { recursive: true });
  }
});
