/**
 * WorkerHost with real `node:worker_threads` workers. The key property: a worker stuck in
 * `while (true) {}` is preempted by `terminate()` (the bootstrap holds a Web Lock), its
 * pending requests fail, and a fresh worker for the same instance serves requests after it.
 * Every CPU and memory limit depends on this.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { InstanceInit, WireError, WireRequest } from "../workers/protocol.ts";
import { bundleSource } from "../src/bundler.ts";
import { type Answer, WorkerGoneError, WorkerHost } from "../src/worker_host.ts";
import { ThreadSpawner } from "../src/thread_spawner.ts";
import { waitFor } from "./e2e/_wait.ts";

/** Names of this process's OS threads (a worker's is `worker-<threadId>`). */
async function threadNames(): Promise<string[]> {
  // Deno needs --allow-all to read /proc/self/task; `ps` lists the same names.
  const ps = new Deno.Command("ps", { args: ["-T", "-o", "comm=", "-p", String(Deno.pid)] });
  const { stdout } = await ps.output();
  return new TextDecoder().decode(stdout).split("\n").map((name) => name.trim());
}

const SPINNER = `import { DurableObject } from "cloudflare:workers";
export class Spinner extends DurableObject {
  async fetch(request) {
    if (new URL(request.url).pathname === "/spin") {
      console.log("spinning");
      while (true) {}
    }
    const n = ((await this.ctx.storage.get("n")) ?? 0) + 1;
    await this.ctx.storage.put("n", n);
    return new Response(String(n));
  }
}
`;

async function instanceInit(dbPath: string): Promise<InstanceInit> {
  const bundle = await bundleSource(SPINNER);
  return {
    appId: "app_test",
    className: "spinner",
    code: bundle.code,
    exportName: "Spinner",
    idHex: "a".repeat(64),
    name: "spin",
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

function get(path: string): { type: "fetch"; req: WireRequest } {
  return {
    type: "fetch",
    req: { url: `http://localhost${path}`, method: "GET", headers: [], body: null },
  };
}

function bodyText(answer: Answer): string {
  assert.equal(answer.type, "response", JSON.stringify(answer));
  if (answer.type !== "response" || !answer.res.body) return "";
  return new TextDecoder().decode(answer.res.body);
}

interface Spawned {
  host: WorkerHost;
  exited: Promise<WireError | null>;
  /** Resolves when user code logged "spinning" (it is in the loop then). */
  spinning: Promise<void>;
}

/** Starts a worker for the instance; its exit and its "spinning" log become promises. */
function spawn(spawner: ThreadSpawner, init: InstanceInit): Spawned {
  const host = new WorkerHost({ spawner, memoryLimitMb: 64 });
  const exited = Promise.withResolvers<WireError | null>();
  const spinning = Promise.withResolvers<void>();
  host.init(init, {
    onMessage(message) {
      if (message.type === "log" && message.message === "spinning") spinning.resolve();
    },
    onExit: (error) => exited.resolve(error),
  });
  return { host, exited: exited.promise, spinning: spinning.promise };
}

Deno.test("WorkerHost.terminate() kills a worker spinning in while (true) {} and fails its requests", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dohost-worker-host-" });
  const spawner = new ThreadSpawner();
  try {
    const init = await instanceInit(join(dir, "spin.sqlite"));
    const first = spawn(spawner, init);
    assert.equal(bodyText(await first.host.request(get("/count"))), "1");

    // The request never answers: the event loop of the worker is stuck in user code.
    const stuck = first.host.request(get("/spin"));
    const queued = first.host.request(get("/count"));
    const settled = Promise.allSettled([stuck, queued]);
    await first.spinning;
    assert.equal(first.host.pending, 2);

    const thread = `worker-${first.host.threadId}`;
    assert.ok((await threadNames()).includes(thread), `the spinning thread ${thread} exists`);
    await first.host.terminate({
      name: "Error",
      code: "CPU_LIMIT_EXCEEDED",
      message: "Durable Object exceeded its CPU time limit and was reset",
    });
    // terminate() resolves even when Deno fails to preempt the loop (without the bootstrap's
    // Web Lock the thread spins on): the OS thread itself must end.
    await waitFor(threadNames, (names) => !names.includes(thread), {
      what: `thread ${thread} to end`,
    });
    assert.equal(first.host.exited, true);
    assert.equal(first.host.pending, 0);
    assert.deepEqual((await first.exited)?.code, "CPU_LIMIT_EXCEEDED");
    for (const result of await settled) {
      assert.equal(result.status, "rejected");
      if (result.status === "rejected") {
        assert.ok(result.reason instanceof WorkerGoneError);
        assert.equal(result.reason.wire.code, "CPU_LIMIT_EXCEEDED");
      }
    }
    await assert.rejects(first.host.request(get("/count")), WorkerGoneError);

    // A fresh worker for the same instance serves requests and sees the committed storage.
    const second = spawn(spawner, init);
    assert.equal(bodyText(await second.host.request(get("/count"))), "2");
    await second.host.stop("shutdown");
    assert.equal(await second.exited, null, "a clean stop is not an error");
  } finally {
    await spawner.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("WorkerHost.terminate() without a reason preempts a worker spinning in its first event", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dohost-worker-host-" });
  const spawner = new ThreadSpawner();
  try {
    const init = await instanceInit(join(dir, "spin.sqlite"));
    const { host, exited, spinning } = spawn(spawner, init);
    const stuck = host.request(get("/spin"));
    const rejected = assert.rejects(stuck, WorkerGoneError);
    await spinning;
    await host.terminate();
    await rejected;
    assert.equal(await exited, null);
    assert.equal(host.exited, true);
  } finally {
    await spawner.close();
    await Deno.remove(dir, { recursive: true });
  }
});
