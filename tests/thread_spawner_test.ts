/**
 * ThreadSpawner: workers started on the spawner threads talk to the main thread over their own
 * port; an exit is reported only after every message the worker sent has arrived; CPU readings
 * come from the spawner while the worker is busy.
 */

import assert from "node:assert/strict";
import { type ThreadError, ThreadSpawner } from "../src/thread_spawner.ts";

const ENTRY = new URL("./fixtures/spawned_thread.js", import.meta.url);
const LIMITS = { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 8 };

function start(spawner: ThreadSpawner) {
  const messages: unknown[] = [];
  const errors: ThreadError[] = [];
  const exited = Promise.withResolvers<number>();
  const ready = Promise.withResolvers<void>();
  const thread = spawner.spawn({
    entry: ENTRY,
    limits: LIMITS,
    data: {},
    events: {
      onError: (error) => errors.push(error),
      onExit: () => exited.resolve(messages.length),
    },
  });
  thread.port.on("message", (message: unknown) => {
    if (message === "ready") ready.resolve();
    else messages.push(message);
  });
  return { thread, messages, errors, exited: exited.promise, ready: ready.promise };
}

Deno.test("ThreadSpawner: messages sent before a crash all arrive before the exit", async () => {
  const spawner = new ThreadSpawner();
  try {
    const worker = start(spawner);
    await worker.ready;
    worker.thread.port.postMessage("burst-then-crash");
    assert.equal(await worker.exited, 500, "every message arrived before onExit");
    assert.deepEqual(worker.messages.at(-1), 499);
    assert.equal(worker.errors.length, 1);
    assert.match(worker.errors[0]?.message ?? "", /crashed on purpose/);
    assert.equal(await worker.thread.cpuMicros(), null, "no CPU reading once gone");
  } finally {
    await spawner.close();
  }
});

Deno.test("ThreadSpawner: a worker that ends its own thread is gone once everything it sent arrived", async () => {
  const spawner = new ThreadSpawner();
  try {
    const worker = start(spawner);
    await worker.ready;
    worker.thread.port.postMessage("burst-then-close");
    await worker.thread.ended();
    assert.equal(await worker.exited, 500, "every message arrived before onExit");
    assert.deepEqual(worker.errors, []);
  } finally {
    await spawner.close();
  }
});

Deno.test("ThreadSpawner: ended() terminates a worker that does not end itself", async () => {
  const spawner = new ThreadSpawner();
  try {
    const worker = start(spawner);
    await worker.ready;
    await worker.thread.ended();
    assert.equal(await worker.exited, 0);
    assert.equal(await worker.thread.cpuMicros(), null, "no CPU reading once gone");
  } finally {
    await spawner.close();
  }
});

Deno.test("ThreadSpawner: the CPU of a busy worker is read from the spawner; terminate ends it", async () => {
  const spawner = new ThreadSpawner();
  try {
    const worker = start(spawner);
    await worker.ready;
    const before = await worker.thread.cpuMicros();
    assert.equal(typeof before, "number");
    const spun = new Promise<void>((resolve) =>
      worker.thread.port.on("message", (message: unknown) => message === "spun" && resolve())
    );
    worker.thread.port.postMessage("spin");
    await spun;
    const after = await worker.thread.cpuMicros();
    assert.ok(
      after !== null && before !== null && after - before >= 200_000,
      `200 ms of the worker's CPU time shows: ${before} → ${after} µs`,
    );
    await worker.thread.terminate();
    await worker.exited;
    assert.deepEqual(worker.errors, [], "a terminated worker has no error");
  } finally {
    await spawner.close();
  }
});

Deno.test("ThreadSpawner: close() ends workers still running and refuses new spawns", async () => {
  const spawner = new ThreadSpawner();
  const workers = [start(spawner), start(spawner), start(spawner)];
  await Promise.all(workers.map((worker) => worker.ready));
  await spawner.close();
  await Promise.all(workers.map((worker) => worker.exited));
  assert.throws(() => start(spawner), /closed/);
});
