/**
 * CPU and memory of a process tree, and of the whole machine, read from `/proc` (Linux only).
 *
 * A server is measured as its root process plus every descendant (miniflare runs workerd as a
 * child), and CPU used by anything else is reported so a disturbed run can be recognised: the
 * client and the server share the machine's cores with whatever else runs.
 */

const CLOCK_TICKS = 100;
const PAGE_KB = 4;

/** Total CPU seconds and resident memory of a process tree. */
export interface TreeSample {
  cpuSec: number;
  rssKb: number;
}

/** Samples the tree rooted at `pid` (processes that are gone are skipped). */
export function sampleTree(pid: number): TreeSample {
  let cpuSec = 0;
  let rssKb = 0;
  for (const member of treeOf(pid)) {
    const stat = readStat(member);
    if (!stat) continue;
    cpuSec += stat.cpuSec;
    rssKb += stat.rssKb;
  }
  return { cpuSec, rssKb };
}

/** CPU seconds the whole machine has spent busy (all cores, since boot). */
export function machineBusySec(): number {
  const line = Deno.readTextFileSync("/proc/stat").split("\n", 1)[0] ?? "";
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …
  const busy = (fields[0] ?? 0) + (fields[1] ?? 0) + (fields[2] ?? 0) + (fields[5] ?? 0) +
    (fields[6] ?? 0) + (fields[7] ?? 0);
  return busy / CLOCK_TICKS;
}

/** CPU seconds used by this (client) process. */
export function selfCpuSec(): number {
  return readStat(Deno.pid)?.cpuSec ?? 0;
}

/** Measures what a phase cost: server tree, client, and everything else on the machine. */
export class CpuMeter {
  readonly #pid: number;
  #server = 0;
  #client = 0;
  #machine = 0;
  #wall = 0;

  constructor(pid: number) {
    this.#pid = pid;
    this.reset();
  }

  reset(): void {
    this.#server = sampleTree(this.#pid).cpuSec;
    this.#client = selfCpuSec();
    this.#machine = machineBusySec();
    this.#wall = performance.now();
  }

  /** CPU seconds since `reset()`; `other` is the machine minus server and client. */
  read(): { wall_s: number; server_cpu_s: number; client_cpu_s: number; other_cpu_s: number } {
    const server = sampleTree(this.#pid).cpuSec - this.#server;
    const client = selfCpuSec() - this.#client;
    const machine = machineBusySec() - this.#machine;
    return {
      wall_s: (performance.now() - this.#wall) / 1000,
      server_cpu_s: server,
      client_cpu_s: client,
      other_cpu_s: Math.max(0, machine - server - client),
    };
  }
}

/**
 * Waits until the rest of the machine uses less than `maxCores` (sampled over 1 s), for at
 * most `timeoutMs`. Returns the last load seen, in cores.
 */
export async function waitForQuiet(
  excludePids: number[],
  maxCores: number,
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let load = Infinity;
  while (true) {
    const own = () => excludePids.reduce((sum, pid) => sum + sampleTree(pid).cpuSec, 0);
    const machine0 = machineBusySec();
    const own0 = own();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    load = Math.max(0, machineBusySec() - machine0 - (own() - own0));
    if (load < maxCores || Date.now() >= deadline) return load;
  }
}

function treeOf(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    const stat = readStat(pid);
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(pid);
    children.set(stat.ppid, list);
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop() ?? 0;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

function readStat(pid: number): { ppid: number; cpuSec: number; rssKb: number } | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  // The command name may contain spaces and parentheses: split after the last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state): ppid = field 4, utime = 14, stime = 15, rss = 24.
  const ppid = Number(fields[1]);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const rssPages = Number(fields[21]);
  return { ppid, cpuSec: (utime + stime) / CLOCK_TICKS, rssKb: rssPages * PAGE_KB };
}

/**
 * Milliseconds to fault in 100 MB of fresh memory (one write per 4 KB page). Creating a worker
 * maps and touches megabytes of new memory, so when the VM's host makes page faults slow (this
 * machine, 2026-11-28: 390–590 ms per 100 MB for hours, while creating a one-line worker cost
 * 470–590 ms of CPU instead of the 50–80 ms measured earlier that day) dohost's instance creation
 * slows with it and a single-isolate peer barely notices. Recorded with every run so such runs are
 * recognised.
 */
export function freshMemoryMsPer100Mb(): number {
  const started = performance.now();
  const bytes = new Uint8Array(100 * 1024 * 1024);
  for (let at = 0; at < bytes.length; at += PAGE_KB * 1024) bytes[at] = 1;
  return performance.now() - started;
}
