/**
 * The server's memory guard: keeps the process's resident memory under a budget
 * (`--max-server-memory-mb`) by stopping the instance most likely allocating.
 *
 * Each instance checks its own V8 heap plus `ArrayBuffer`s (`workers/memory_guard.ts`), but only
 * when its code yields: a synchronous allocation loop never reaches the check, and `Blob`,
 * `SharedArrayBuffer` and `WebAssembly.Memory` bytes are not in V8's count. Deno gives no
 * per-thread memory reading (threads share one address space), so this guard watches the whole
 * process and attributes by CPU: a thread allocating in a tight loop runs flat out.
 *
 * Every {@linkcode TICK_MS} it reads the process's RSS (`Deno.memoryUsage().rss`, about 20 µs, no
 * permission needed). Over the budget, it reads the thread CPU clock of every live instance
 * (`WorkerHost.threadCpuMicros()`) and again one tick later, and stops, with
 * `503 MEMORY_LIMIT_EXCEEDED`, the instance whose CPU grew most in between among the suspects:
 * instances with an event in flight, instances whose last report put them at half their memory
 * limit or more, and instances that used at least half the window on CPU. It then waits for
 * that worker to be gone (its memory returns to the system: measured, 659 → 155 MB within
 * 0.5 s of terminating a 500 MB worker). If RSS is still over the budget then, the next stop
 * needs RSS {@linkcode MARGIN_BYTES} above that level, so memory the allocator keeps does not
 * cost a second, innocent instance.
 *
 * Precision: a culprit is stopped one to two ticks (plus the time to read the CPU clocks) after
 * RSS passes the budget, so the overshoot is what it allocates in that time (measured: a tight
 * loop filling 10 MB buffers under a 1 GB budget peaked 16–45 MB over it and got its 503
 * 107–219 ms after RSS passed it, loaded 2-core machine). The choice is a heuristic: an instance
 * that allocates slowly while another one burns CPU can make the other one the victim.
 */

import type { Instance, InstanceManager } from "./instances.ts";
import type { Logger } from "./log.ts";

/** How often RSS is read. */
export const TICK_MS = 100;
/** After a stop that left RSS over the budget, how much more it takes to stop another. */
export const MARGIN_BYTES = 64 * 1024 * 1024;
/** The `auto` budget's share of the machine's memory. */
const AUTO_SHARE = 0.8;
const MIB = 1024 * 1024;

/** Options for {@linkcode ServerMemoryGuard}. */
export interface ServerMemoryGuardOptions {
  budgetBytes: number;
  instances: Pick<InstanceManager, "live" | "stopForMemory">;
  logger: Logger;
}

/** Watches the process's RSS and stops the instance most likely allocating past the budget. */
export class ServerMemoryGuard {
  readonly #options: ServerMemoryGuardOptions;
  readonly #timer: ReturnType<typeof setInterval>;
  /** RSS above which the guard acts: the budget, or higher after a stop (see the module doc). */
  #trigger: number;
  /** Thread CPU readings of the previous tick, while over the trigger. */
  #marks: { at: number; micros: Map<Instance, number> } | null = null;
  /** The last instance stopped, until its worker is gone. */
  #victim: Instance | null = null;
  #sampling = false;
  #warned = false;

  constructor(options: ServerMemoryGuardOptions) {
    this.#options = options;
    this.#trigger = options.budgetBytes;
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
  }

  /** Stops watching. */
  close(): void {
    clearInterval(this.#timer);
  }

  async #tick(): Promise<void> {
    if (this.#sampling) return;
    const { budgetBytes } = this.#options;
    if (this.#victim) {
      if (!this.#victim.host.exited) return;
      this.#victim = null;
      const after = rss();
      this.#trigger = after > budgetBytes ? after + MARGIN_BYTES : budgetBytes;
    }
    const resident = rss();
    if (resident <= budgetBytes) this.#trigger = budgetBytes;
    if (resident <= this.#trigger) {
      this.#marks = null;
      this.#warned = false;
      return;
    }
    this.#sampling = true;
    try {
      const micros = await cpuReadings(this.#options.instances.live);
      const at = performance.now();
      const marks = this.#marks;
      this.#marks = { at, micros };
      if (marks) this.#act(resident, marks, micros, at - marks.at);
    } finally {
      this.#sampling = false;
    }
  }

  /** Stops the suspect whose CPU grew most between two readings (if any). */
  #act(
    resident: number,
    marks: { micros: Map<Instance, number> },
    micros: Map<Instance, number>,
    windowMs: number,
  ): void {
    let culprit: Instance | null = null;
    let most = 0;
    for (const [instance, now] of micros) {
      const grew = now - (marks.micros.get(instance) ?? now);
      if (grew <= most || instance.host.exited) continue;
      const suspect = instance.host.pending > 0 ||
        instance.memoryBytes >= instance.memoryLimitBytes / 2 ||
        grew >= windowMs * 500;
      if (suspect) {
        culprit = instance;
        most = grew;
      }
    }
    const { budgetBytes, logger, instances } = this.#options;
    const over = `Server memory ${mb(resident)} MB is over its budget of ${mb(budgetBytes)} MB`;
    if (!culprit) {
      if (!this.#warned) logger.log("warn", `${over}; no instance is allocating, none stopped`);
      this.#warned = true;
      return;
    }
    const { app, record, name, idHex } = culprit.target;
    logger.log("warn", `${over}: stopping the instance most likely allocating`, {
      app: app.appId,
      class: record.name,
      instance: name ?? idHex,
      cpu_ms: String(Math.round(most / 1000)),
      reported_mb: String(mb(culprit.memoryBytes)),
    });
    this.#victim = culprit;
    this.#marks = null;
    instances.stopForMemory(
      culprit,
      "server",
      "Durable Object was reset: the server ran over its memory budget while it was allocating",
    );
  }
}

/**
 * The budget in bytes for `--max-server-memory-mb` (`flag`): 0 turns the guard off (null);
 * `auto` is 80% of the machine's memory (`Deno.systemMemoryInfo()`, which needs
 * `--allow-sys=systemMemoryInfo`: `/proc` itself needs `--allow-all` in Deno 2.9), or null
 * without that permission. A container's memory limit is not seen: set the flag there.
 */
function serverMemoryBudget(flag: number | "auto"): number | null {
  if (flag !== "auto") return flag === 0 ? null : flag * MIB;
  const permission = Deno.permissions.querySync({ name: "sys", kind: "systemMemoryInfo" });
  if (permission.state !== "granted") return null;
  return Math.floor(Deno.systemMemoryInfo().total * AUTO_SHARE);
}

/**
 * Starts the guard for `--max-server-memory-mb`; null when it is off (0), or `auto` may not
 * read the memory size (logged: the operator should grant it or set the flag).
 */
export function startServerMemoryGuard(
  flag: number | "auto",
  instances: ServerMemoryGuardOptions["instances"],
  logger: Logger,
): ServerMemoryGuard | null {
  const budgetBytes = serverMemoryBudget(flag);
  if (budgetBytes !== null) return new ServerMemoryGuard({ budgetBytes, instances, logger });
  if (flag === "auto") {
    logger.log(
      "warn",
      "Server memory guard off: the memory size needs --allow-sys=systemMemoryInfo; " +
        "grant it or set --max-server-memory-mb",
    );
  }
  return null;
}

/** Thread CPU µs of every live instance (instances gone meanwhile are left out). */
async function cpuReadings(live: Iterable<Instance>): Promise<Map<Instance, number>> {
  const instances = [...live].filter((instance) => !instance.host.exited);
  const readings = await Promise.all(
    instances.map((instance) => instance.host.threadCpuMicros().catch(() => null)),
  );
  const micros = new Map<Instance, number>();
  instances.forEach((instance, i) => {
    const reading = readings[i];
    if (typeof reading === "number") micros.set(instance, reading);
  });
  return micros;
}

/** The process's resident memory in bytes (no permission needed, unlike `/proc`). */
function rss(): number {
  return Deno.memoryUsage().rss;
}

function mb(bytes: number): number {
  return Math.round(bytes / MIB);
}
