/**
 * Closed-loop HTTP load: N keep-alive connections, one request in flight on each, for a fixed
 * time. Throughput counts the 2xx responses that arrived inside the measured window (as wrk
 * does); latency covers every request sent inside it. Every loop is bounded in time, and a
 * watchdog abandons connections that stop answering.
 */

import { HttpConnection, requestBytes } from "./http_client.ts";
import { percentile } from "./stats.ts";

/** What one request of the loop is. */
export interface LoadRequest {
  method: string;
  path: string;
  body?: Uint8Array | null;
}

/** Options for {@linkcode runLoad}. */
export interface LoadOptions {
  port: number;
  connections: number;
  durationMs: number;
  /** Load before the measured window (not counted). */
  warmupMs?: number;
  /** The request connection `conn` sends as its `seq`-th (called for every request). */
  next(conn: number, seq: number): LoadRequest;
  /** Sees every answer; return false to count it as an error (bodies are read only if set). */
  check?(status: number, body: Uint8Array | null): boolean;
  keepBodies?: boolean;
  /** Called when the measured window opens (after the warmup), e.g. to reset a CPU meter. */
  onWindowStart?(): void;
}

/** What a load phase measured. */
export interface LoadResult {
  rps: number;
  ok: number;
  errors: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  /** How long the last request took to come back after the window closed. */
  drain_ms: number;
}

const HOST = "127.0.0.1";
/** Abandon the phase this long after its window closed. */
const WATCHDOG_MS = 15_000;

/** Runs one closed-loop phase. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const connections = await Promise.all(
    Array.from({ length: options.connections }, () => HttpConnection.open(HOST, options.port)),
  );
  const host = `${HOST}:${options.port}`;
  const cache = new Map<string, Uint8Array>();
  const bytesOf = (request: LoadRequest): Uint8Array => {
    if (request.body) return requestBytes(request.method, request.path, host, request.body);
    const key = `${request.method} ${request.path}`;
    let bytes = cache.get(key);
    if (!bytes) {
      bytes = requestBytes(request.method, request.path, host);
      if (cache.size < 10_000) cache.set(key, bytes);
    }
    return bytes;
  };
  const startAt = performance.now();
  const windowStart = startAt + (options.warmupMs ?? 0);
  const windowEnd = windowStart + options.durationMs;
  let inWindowOk = 0;
  let ok = 0;
  let errors = 0;
  let lastDone = windowEnd;
  const latencies: number[] = [];
  const loop = async (index: number, conn: HttpConnection) => {
    let seq = 0;
    while (true) {
      const sentAt = performance.now();
      if (sentAt >= windowEnd) return;
      const request = options.next(index, seq++);
      try {
        const result = await conn.send(bytesOf(request), options.keepBodies ?? false);
        const doneAt = performance.now();
        const good = result.status >= 200 && result.status < 300 &&
          (options.check?.(result.status, result.body) ?? true);
        if (sentAt >= windowStart) {
          latencies.push(doneAt - sentAt);
          if (good) ok++;
          else errors++;
          if (good && doneAt <= windowEnd) inWindowOk++;
          if (doneAt > lastDone) lastDone = doneAt;
        }
      } catch {
        errors++;
        return;
      }
    }
  };
  const windowTimer = setTimeout(() => options.onWindowStart?.(), windowStart - startAt);
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    Promise.all(connections.map((conn, i) => loop(i, conn))),
    new Promise<void>((resolve) => {
      watchdog = setTimeout(resolve, (options.warmupMs ?? 0) + options.durationMs + WATCHDOG_MS);
    }),
  ]);
  clearTimeout(watchdog);
  clearTimeout(windowTimer);
  for (const conn of connections) conn.close();
  latencies.sort((a, b) => a - b);
  return {
    rps: inWindowOk / (options.durationMs / 1000),
    ok,
    errors,
    p50_ms: percentile(latencies, 0.5),
    p90_ms: percentile(latencies, 0.9),
    p99_ms: percentile(latencies, 0.99),
    max_ms: latencies.at(-1) ?? 0,
    drain_ms: lastDone - windowEnd,
  };
}

/** One request on a fresh connection per call site (sequential probes, setup, checks). */
export async function request(
  port: number,
  method: string,
  path: string,
  body: Uint8Array | null = null,
): Promise<{ status: number; text: string; ms: number }> {
  const conn = await HttpConnection.open(HOST, port);
  try {
    const started = performance.now();
    const result = await conn.send(requestBytes(method, path, `${HOST}:${port}`, body), true);
    const ms = performance.now() - started;
    return { status: result.status, text: new TextDecoder().decode(result.body ?? undefined), ms };
  } finally {
    conn.close();
  }
}
