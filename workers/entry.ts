/// <reference lib="deno.worker" />
/**
 * The instance worker's entry point: hardens the global scope, loads the class, and turns host
 * messages into calls on the {@linkcode ObjectRuntime}.
 *
 * Order matters. First the bootstrap takes a Web Lock that it never releases: in Deno a
 * `node:worker_threads` worker holding one is preempted by `terminate()` even inside
 * `while (true) {}`, which is what makes CPU limits enforceable. Then it captures what the
 * runtime needs (the parent port, the thread CPU clock) and deletes the globals user code must
 * not reach (`Deno`, `process`, `require`, `Buffer`, `Worker`, …) before any user code loads.
 * The class arrives bundled by the host and is compiled from memory (`class_loader.ts`), so
 * nothing depends on files outside a compiled binary.
 */

import { type MessagePort, threadId, workerData } from "node:worker_threads";
import process from "node:process";
import { withCallDepth } from "./call_context.ts";
import { loadBundle } from "./class_loader.ts";
import { MemoryGuard } from "./memory_guard.ts";
import { namespaceBindings } from "./namespace.ts";
import { type HostPort, type ObjectClass, ObjectRuntime, toWireError } from "./object_runtime.ts";
import { installOutbound } from "./outbound.ts";
import { type Batch, unbatch } from "./outbox.ts";
import { trackTimers } from "./pending_timers.ts";
import { listen } from "./port_listener.ts";
import {
  type HostMessage,
  type InstanceInit,
  type LogLevel,
  requestFromWire,
  type WireExport,
  type WorkerEgress,
  type WorkerMessage,
} from "./protocol.ts";
import { receiveRpc } from "./rpc_receiver.ts";
import { DurableObject, RpcTarget, WorkerEntrypoint } from "./runtime.ts";
import { CallChannel } from "./stub.ts";
import { warmUp } from "./warm_up.ts";
import { installWebSocketGlobals } from "./websocket.ts";

/** Globals removed before user code runs (they would reach the host's powers). */
const STRIPPED_GLOBALS = [
  "Deno",
  "process",
  "require",
  "Buffer",
  "Worker",
  "BroadcastChannel",
  "global",
  "caches",
  "setImmediate",
  "clearImmediate",
  // The worker scope's own channel to the host: user code must not forge host messages.
  "postMessage",
  "onmessage",
  "close",
  "nodeBootstrap",
];

/** What the host hands over at spawn (see src/thread_spawner.ts). */
const spawnData = workerData as { egress: WorkerEgress | null; port?: MessagePort } | null;
if (!spawnData?.port) throw new Error("workers/entry.ts must be started by src/thread_spawner.ts");
/** The channel to the main thread (the worker's parent is the spawner thread). */
const port = spawnData.port;
const threadCpu = process.threadCpuUsage.bind(process);
/**
 * Ends this thread (after `stop`); messages posted before it are still delivered. The worker
 * scope's `close()`, captured before it is removed (`process.exit` needs the `Deno` global).
 */
const exitThread = globalThis.close.bind(globalThis);
/** Bound now, so patching a prototype later cannot intercept what goes to the host. */
const postToHost = port.postMessage.bind(port);

/**
 * How old a CPU reading may be when an answer reports it. The thread clock moves in 10 ms steps
 * and a read costs ~20 µs (60 µs while page faults are slow: it opens a `/proc` file); read
 * every 2 ms it still took 7.5 % of an echo worker's CPU (`--cpu-prof`).
 */
const CPU_READ_EVERY_MS = 10;
const wallClock = performance.now.bind(performance);
let cpuReading = 0;
let cpuReadAt = -Infinity;

/** The instance's memory check (from `init` on): it runs before every message to the host. */
let memory: MemoryGuard | null = null;

const host: HostPort = {
  post(message: WorkerMessage, transfer: Transferable[] = []): void {
    memory?.check(message);
    postToHost(message, transfer as never[]);
  },
  cpu: () => cpuClock(CPU_READ_EVERY_MS),
};

/** The thread's CPU time in µs, from a reading at most `maxAgeMs` old. */
function cpuClock(maxAgeMs: number): number {
  const at = wallClock();
  if (at - cpuReadAt >= maxAgeMs) {
    const usage = threadCpu();
    cpuReading = usage.user + usage.system;
    cpuReadAt = at;
  }
  return cpuReading;
}

let runtime: ObjectRuntime | null = null;
/** Calls to other objects (`env.<BINDING>` stubs); they leave after earlier writes commit. */
const calls = new CallChannel(
  (message, transfer) => host.post(message, transfer),
  () => runtime?.state.storage.sync() ?? Promise.resolve(),
);
/** Settles once `init` has loaded the class; later events wait for it, in arrival order. */
let started: Promise<ObjectRuntime> | null = null;

/** The Web Locks API (present in Deno workers; missing from the worker lib typings). */
interface LockManager {
  request(name: string, callback: () => Promise<never>): Promise<unknown>;
}
const locks = (navigator as unknown as { locks: LockManager }).locks;
await new Promise<void>((locked) => {
  locks.request(`dohost-instance-${crypto.randomUUID()}`, () => {
    locked();
    return new Promise<never>(() => {});
  });
});
forwardConsole();
keepAliveOnUncaught();
installOutbound(spawnData.egress);
installWebSocketGlobals(globalThis);
trackTimers(globalThis);
for (const name of STRIPPED_GLOBALS) Reflect.deleteProperty(globalThis, name);
await warmUp(host.cpu);

listen<HostMessage | Batch<HostMessage>>(port, (message) => unbatch(message, handle));
// Host messages are for the runtime only: listeners user code adds to the global scope later
// run after this one and never see them.
globalThis.addEventListener("message", (event) => event.stopImmediatePropagation());
// A fresh reading: the instance's CPU is counted from here (boot and warm-up are not billed).
host.post({ type: "ready", threadId, cpu: cpuClock(0) });

function handle(message: HostMessage): void {
  memory?.received(message);
  switch (message.type) {
    case "init":
      if (message.init.memoryLimitMb) {
        memory = new MemoryGuard({
          limitMb: message.init.memoryLimitMb,
          post: (report) => postToHost(report),
          busy: () => runtime?.busy ?? false,
        });
      }
      started = start(message.init);
      started.then(
        (value) => runtime = value,
        (error) => host.post({ type: "init-error", error: toWireError(error) }),
      );
      return;
    case "inspect":
      inspect(message.code).then(
        (exports) => host.post({ type: "inspected", exports }),
        (error) => host.post({ type: "init-error", error: toWireError(error) }),
      );
      return;
    case "fetch":
      withCallDepth(
        message.depth ?? 0,
        () => withRuntime((rt) => rt.fetch(message.reqId, requestFromWire(message.req))),
      );
      return;
    case "alarm":
      withRuntime((rt) =>
        rt.alarms.run(message.retryCount, message.scheduledTime).then(
          (result) =>
            host.post({ type: "alarm-result", reqId: message.reqId, result, cpu: host.cpu() }),
          (error) => rt.fail(message.reqId, error),
        )
      );
      return;
    case "rpc":
      withCallDepth(
        message.depth,
        () =>
          withRuntime((rt) =>
            receiveRpc(rt, message.method, message.args).then(
              (value) =>
                host.post({ type: "rpc-result", reqId: message.reqId, value, cpu: host.cpu() }),
              (error) => rt.fail(message.reqId, error),
            )
          ),
      );
      return;
    case "call-result":
      calls.settle(message.callId, message.result);
      return;
    case "ping":
      host.post({ type: "pong", seq: message.seq });
      return;
    case "stop":
      // The thread ends itself once storage is closed: its memory is returned at once, and the
      // spawner thread (busy creating workers under load) has nothing to do for it.
      if (started) {
        withRuntime((rt) => {
          rt.stop();
          exitThread();
        });
      } else {
        host.post({ type: "stopped" });
        exitThread();
      }
      return;
    case "ws-attached":
    case "ws-message":
    case "ws-close":
    case "ws-error":
    case "ws-auto-responded":
    case "ws-probe":
      withRuntime((rt) => rt.sockets.receive(message));
      return;
    default: {
      const unknown: never = message;
      throw new Error(`Unknown host message ${JSON.stringify(unknown)}`);
    }
  }
}

/** Runs `fn` once the instance is loaded (a failed load was already reported). */
function withRuntime(fn: (runtime: ObjectRuntime) => unknown): void {
  if (runtime) {
    fn(runtime);
    return;
  }
  if (!started) throw new Error("Cannot handle an event before init");
  started.then(fn, () => {});
}

async function start(init: InstanceInit): Promise<ObjectRuntime> {
  const env: Record<string, unknown> = {
    ...init.env,
    ...namespaceBindings(init.appId, init.bindings, calls),
  };
  const module = await load(init.code, env);
  const objectClass = module[init.exportName];
  if (typeof objectClass !== "function") {
    throw new TypeError(`Module does not export class "${init.exportName}"`);
  }
  return new ObjectRuntime(init, { objectClass: objectClass as ObjectClass, port: host, env });
}

/** Loads a bundle after exposing the `cloudflare:workers` exports to it. */
function load(code: string, env: Record<string, unknown>): Promise<Record<string, unknown>> {
  Reflect.set(globalThis, "__CF", {
    DurableObject,
    RpcTarget,
    WorkerEntrypoint,
    env,
    waitUntil: (promise: Promise<unknown>) => runtime?.state.waitUntil(promise),
  });
  return loadBundle(code);
}

/** Loads a module at deploy time and reports what kind of thing each export is. */
async function inspect(code: string): Promise<WireExport[]> {
  const module = await load(code, {});
  return Object.entries(module).map(([name, value]) => ({
    name,
    kind: typeof value !== "function"
      ? "other"
      : /^class\b/.test(Function.prototype.toString.call(value))
      ? "class"
      : "function",
  }));
}

/**
 * Logs uncaught errors and unhandled rejections of object code (a throwing timer callback, a
 * forgotten promise) instead of ending the worker: Cloudflare logs them and keeps the object.
 */
function keepAliveOnUncaught(): void {
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    // deno-lint-ignore no-console -- forwarded to the host's log as this instance's output
    console.error(`Uncaught (in promise) ${briefError(event.reason)}`);
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    // deno-lint-ignore no-console -- forwarded to the host's log as this instance's output
    console.error(`Uncaught ${briefError(event.error ?? event.message)}`);
  });
}

/** `Name: message` of a thrown value, on one line. */
function briefError(value: unknown): string {
  return value instanceof Error ? `${value.name}: ${value.message}` : String(value);
}

/** Sends `console.*` output to the host, which logs it with the instance's identity. */
function forwardConsole(): void {
  const levels: [keyof Console, LogLevel][] = [
    ["debug", "debug"],
    ["log", "info"],
    ["info", "info"],
    ["warn", "warn"],
    ["error", "error"],
  ];
  for (const [method, level] of levels) {
    Reflect.set(console, method, (...args: unknown[]) => {
      host.post({ type: "log", level, message: args.map(formatArg).join(" ") });
    });
  }
}

function formatArg(arg: unknown): string {
  if (typeof arg === "string") return arg;
  if (arg instanceof Error) return arg.stack ?? `${arg.name}: ${arg.message}`;
  try {
    return JSON.stringify(arg) ?? String(arg);
  } catch {
    return String(arg);
  }
}
