/**
 * The spawner thread: starts, watches and terminates instance workers on behalf of the main
 * thread, which talks to each worker directly over a `MessagePort` it created itself.
 *
 * In Deno 2.9 `new Worker()` returns only once the new thread has booted (60–300 ms, measured;
 * a trivial worker too), blocking the calling thread all that time. Run on the main thread, that
 * stalled every request whenever an instance started. Here it stalls only this thread, whose
 * sole job is this. The port a worker uses is handed to it in `workerData`, so messages between
 * the main thread and the worker never pass through here.
 *
 * This file runs as a `node:worker_threads` worker; `src/thread_spawner.ts` is its other end.
 */

import { type MessagePort, parentPort, Worker } from "node:worker_threads";

/** Heap limits of a spawned worker (`resourceLimits`). */
export interface ThreadLimits {
  maxOldGenerationSizeMb: number;
  maxYoungGenerationSizeMb: number;
}

/** Why a worker thread failed (its `error` event). */
export interface ThreadError {
  name: string;
  message: string;
  /** Node's error code, e.g. `ERR_WORKER_OUT_OF_MEMORY`. */
  code?: string;
}

/** Main thread → spawner. */
export type SpawnerCommand =
  | {
    type: "spawn";
    id: number;
    entry: string;
    limits: ThreadLimits;
    /** Given to the worker as `workerData`, with `port` added. */
    data: Record<string, unknown>;
    port: MessagePort;
  }
  | { type: "terminate"; id: number }
  | { type: "cpu"; id: number; seq: number };

/** Spawner → main thread. */
export type SpawnerEvent =
  | { type: "error"; id: number; error: ThreadError }
  | { type: "exit"; id: number }
  /** `micros` is null when the worker is already gone. */
  | { type: "cpu"; seq: number; micros: number | null };

/** `worker.cpuUsage()`: present in Deno 2.9's node:worker_threads, missing from its typings. */
interface CpuReadable {
  cpuUsage(): Promise<{ user: number; system: number }>;
}

if (!parentPort) throw new Error("src/spawner_thread.ts must run as a node:worker_threads worker");
const host = parentPort;
const threads = new Map<number, Worker>();
const send = (event: SpawnerEvent) => host.postMessage(event);

host.on("message", (command: SpawnerCommand) => {
  switch (command.type) {
    case "spawn":
      spawn(command);
      return;
    case "terminate": {
      const worker = threads.get(command.id);
      if (worker) worker.terminate();
      else send({ type: "exit", id: command.id });
      return;
    }
    case "cpu": {
      const worker = threads.get(command.id) as (Worker & Partial<CpuReadable>) | undefined;
      if (!worker?.cpuUsage) {
        send({ type: "cpu", seq: command.seq, micros: null });
        return;
      }
      worker.cpuUsage().then(
        (usage) => send({ type: "cpu", seq: command.seq, micros: usage.user + usage.system }),
        () => send({ type: "cpu", seq: command.seq, micros: null }),
      );
      return;
    }
  }
});

function spawn(command: Extract<SpawnerCommand, { type: "spawn" }>): void {
  let worker: Worker;
  try {
    worker = new Worker(new URL(command.entry), {
      resourceLimits: command.limits,
      workerData: { ...command.data, port: command.port },
      transferList: [command.port],
    });
  } catch (error) {
    const { name, message } = error instanceof Error ? error : new Error(String(error));
    send({ type: "error", id: command.id, error: { name, message } });
    send({ type: "exit", id: command.id });
    return;
  }
  threads.set(command.id, worker);
  worker.on("error", (error: Error & { code?: string }) => {
    send({
      type: "error",
      id: command.id,
      error: { name: error.name, message: error.message, code: error.code },
    });
  });
  worker.on("exit", () => {
    threads.delete(command.id);
    send({ type: "exit", id: command.id });
  });
}
