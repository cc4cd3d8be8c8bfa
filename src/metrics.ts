/**
 * `GET /metrics` in the Prometheus text format (version 0.0.4).
 *
 * Counters are kept in memory from process start (Prometheus handles restarts): data-plane
 * requests by app, class and status, their latency as a histogram, errors by code, instance
 * starts, instance CPU time and instances stopped for memory. Gauges (live and hibernated
 * instances, sockets, storage bytes) are read when scraped. Class labels only name deployed
 * classes, so a client requesting random paths cannot grow the label set.
 */

import type { Context, MiddlewareHandler } from "hono";
import { Hono } from "hono";
import type { AppStore } from "./apps.ts";
import { bearer } from "./auth.ts";
import { appForHost, type DispatchDeps } from "./dispatch.ts";
import { ServerError } from "./errors.ts";
import { timingSafeEqualText } from "./secrets.ts";
import type { InstanceStorage } from "./instance_storage.ts";
import type { InstanceManager } from "./instances.ts";
import type { Registry } from "./registry.ts";
import type { SocketView } from "./socket_view.ts";

/** Latency histogram bucket bounds, in seconds. */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const DO_PATH = /^\/_do\/([^/]+)\//;

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

/** The in-memory counters. */
export class Metrics {
  readonly #requests = new Map<string, number>();
  readonly #latency = new Map<string, Histogram>();
  readonly #errors = new Map<string, number>();
  readonly #starts = new Map<string, number>();
  readonly #cpuMs = new Map<string, number>();
  readonly #memoryStops = new Map<string, number>();
  /** The two rendered label sets of each (app, class, status) seen, built once. */
  readonly #requestKeys = new Map<string, { requests: string; latency: string }>();
  readonly #started = Date.now();

  /** A data-plane request finished. `errorCode` is set for failed ones. */
  request(
    labels: { app: string; class: string; status: number },
    seconds: number,
    errorCode: string | null,
  ): void {
    const keys = this.#keysOf(labels);
    add(this.#requests, keys.requests, 1);
    let histogram = this.#latency.get(keys.latency);
    if (!histogram) {
      histogram = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.#latency.set(keys.latency, histogram);
    }
    for (let i = 0; i < BUCKETS.length; i++) {
      if (seconds <= (BUCKETS[i] ?? 0)) histogram.counts[i] = (histogram.counts[i] ?? 0) + 1;
    }
    histogram.sum += seconds;
    histogram.count++;
    if (errorCode) add(this.#errors, labelSet({ code: errorCode }), 1);
  }

  /** The request counter's and the latency histogram's label sets for `labels`. */
  #keysOf(labels: { app: string; class: string; status: number }): {
    requests: string;
    latency: string;
  } {
    const id = `${labels.app}\0${labels.class}\0${labels.status}`;
    let keys = this.#requestKeys.get(id);
    if (!keys) {
      keys = {
        requests: labelSet({ ...labels, status: String(labels.status) }),
        latency: labelSet({ app: labels.app, class: labels.class }),
      };
      this.#requestKeys.set(id, keys);
    }
    return keys;
  }

  /** An instance started. */
  started(app: string, className: string): void {
    add(this.#starts, labelSet({ app, class: className }), 1);
  }

  /** Instance code used `ms` of CPU. */
  cpu(app: string, className: string, ms: number): void {
    add(this.#cpuMs, labelSet({ app, class: className }), ms);
  }

  /** An instance was stopped for memory; `cause` names the guard (see `MemoryStopCause`). */
  memoryStopped(app: string, className: string, cause: string): void {
    add(this.#memoryStops, labelSet({ app, class: className, cause }), 1);
  }

  /** The exposition text, with the gauges read now. */
  render(gauges: MetricGauges): string {
    const out: string[] = [];
    family(out, "dohost_requests_total", "counter", "Data-plane requests by status");
    for (const [labels, value] of this.#requests) {
      out.push(`dohost_requests_total${labels} ${value}`);
    }
    family(out, "dohost_request_duration_seconds", "histogram", "Data-plane request latency");
    for (const [labels, histogram] of this.#latency) {
      const inner = labels.slice(1, -1);
      BUCKETS.forEach((bound, i) => {
        const count = histogram.counts[i] ?? 0; // already cumulative
        out.push(`dohost_request_duration_seconds_bucket{${inner},le="${bound}"} ${count}`);
      });
      out.push(`dohost_request_duration_seconds_bucket{${inner},le="+Inf"} ${histogram.count}`);
      out.push(`dohost_request_duration_seconds_sum${labels} ${histogram.sum}`);
      out.push(`dohost_request_duration_seconds_count${labels} ${histogram.count}`);
    }
    family(out, "dohost_errors_total", "counter", "Failed data-plane requests by error code");
    for (const [labels, value] of this.#errors) out.push(`dohost_errors_total${labels} ${value}`);
    family(out, "dohost_instance_starts_total", "counter", "Instance workers started");
    for (const [labels, value] of this.#starts) {
      out.push(`dohost_instance_starts_total${labels} ${value}`);
    }
    family(out, "dohost_instance_cpu_seconds_total", "counter", "Thread CPU time of object code");
    for (const [labels, value] of this.#cpuMs) {
      out.push(`dohost_instance_cpu_seconds_total${labels} ${value / 1000}`);
    }
    family(
      out,
      "dohost_instance_memory_stops_total",
      "counter",
      "Instances stopped for memory, by cause (heap cap, own check, server RSS guard)",
    );
    for (const [labels, value] of this.#memoryStops) {
      out.push(`dohost_instance_memory_stops_total${labels} ${value}`);
    }
    family(out, "dohost_instances", "gauge", "Instances by state");
    out.push(`dohost_instances{state="live"} ${gauges.live}`);
    out.push(`dohost_instances{state="hibernated"} ${gauges.hibernated}`);
    family(out, "dohost_websockets", "gauge", "Open client WebSockets");
    out.push(`dohost_websockets ${gauges.sockets}`);
    family(out, "dohost_storage_bytes", "gauge", "Instance database bytes on disk by class");
    for (const [labels, value] of gauges.storage) {
      out.push(`dohost_storage_bytes${labels} ${value}`);
    }
    family(out, "dohost_process_resident_memory_bytes", "gauge", "Resident memory of the server");
    out.push(`dohost_process_resident_memory_bytes ${Deno.memoryUsage().rss}`);
    family(out, "dohost_uptime_seconds", "gauge", "Seconds since the server started");
    out.push(`dohost_uptime_seconds ${(Date.now() - this.#started) / 1000}`);
    return out.join("\n") + "\n";
  }
}

/** Gauges read at scrape time. */
export interface MetricGauges {
  live: number;
  hibernated: number;
  sockets: number;
  /** Rendered label set → bytes. */
  storage: Map<string, number>;
}

/** Middleware for `/_do/*` that times each request and counts it. */
export function countRequests(metrics: Metrics, deps: DispatchDeps): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    await next();
    const seconds = (performance.now() - started) / 1000;
    const status = c.res.status;
    const errorCode = c.res.headers.get("x-dohost-error") ??
      (status >= 400 ? `HTTP_${status}` : null);
    metrics.request({ ...requestLabels(c, deps), status }, seconds, errorCode);
  };
}

/** What `GET /metrics` needs. */
export interface MetricsRouteDeps {
  metrics: Metrics;
  adminToken: string;
  /** `--metrics-public`: no token needed. */
  open: boolean;
  apps: AppStore;
  registry: Registry;
  instances: InstanceManager;
  storage: InstanceStorage;
  sockets: SocketView;
}

/** The `/metrics` route. */
export function metricsRoutes(deps: MetricsRouteDeps): Hono {
  const app = new Hono();
  app.get("/metrics", async (c) => {
    if (!deps.open) {
      const token = bearer(c.req.header("authorization"));
      if (token === null || !timingSafeEqualText(token, deps.adminToken)) {
        throw new ServerError("REQUEST_ERROR", "Authentication required", {
          status: 401,
          remediation: "Send the admin token, or start the server with --metrics-public.",
        });
      }
    }
    const totals = deps.sockets.totals();
    const gauges: MetricGauges = {
      live: [...deps.instances.live].length,
      hibernated: totals.hibernated,
      sockets: totals.sockets,
      storage: await storageBytes(deps),
    };
    return c.text(deps.metrics.render(gauges), 200, {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
    });
  });
  return app;
}

async function storageBytes(deps: MetricsRouteDeps): Promise<Map<string, number>> {
  const result = new Map<string, number>();
  for (const app of deps.apps.list()) {
    for (const record of deps.registry.list(app.appId)) {
      const files = await deps.storage.files(app.appId, record.name);
      const bytes = files.reduce((sum, file) => sum + file.bytes, 0);
      result.set(labelSet({ app: app.appId, class: record.name }), bytes);
    }
  }
  return result;
}

function requestLabels(c: Context, deps: DispatchDeps): { app: string; class: string } {
  const url = new URL(c.req.url);
  const app = appForHost(url.host, deps);
  if (app instanceof Response) return { app: "", class: "" };
  const name = DO_PATH.exec(url.pathname + "/")?.[1] ?? "";
  return { app: app.appId, class: deps.registry.ready(app.appId, name) ? name : "" };
}

function family(out: string[], name: string, type: string, help: string): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
}

function add(map: Map<string, number>, key: string, value: number): void {
  map.set(key, (map.get(key) ?? 0) + value);
}

/** `{a="x",b="y"}` with values escaped as the format requires. */
function labelSet(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([name, value]) =>
    `${name}="${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`
  );
  return `{${parts.join(",")}}`;
}
