/**
 * Operations: what lets an operator see inside a running server. It owns the instance observers
 * (the name index, the per-class log ring, the metrics counters) and mounts the routes built on
 * them: inspection (`inspect_routes.ts`), backups (`backup.ts`) and `/metrics` (`metrics.ts`).
 * `server.ts` creates it, hands {@linkcode Operations.observer} to the instance manager and
 * calls {@linkcode Operations.mount} once.
 */

import type { DatabaseSync } from "node:sqlite";
import type { Hono } from "hono";
import type { AppStore } from "./apps.ts";
import { backupRoutes } from "./backup.ts";
import type { Config } from "./config.ts";
import type { DispatchDeps } from "./dispatch.ts";
import { InstanceIndex } from "./instance_index.ts";
import type { InstanceStorage } from "./instance_storage.ts";
import type { InstanceManager, InstanceObserver } from "./instances.ts";
import { inspectRoutes } from "./inspect_routes.ts";
import { LogRing } from "./log_ring.ts";
import { countRequests, Metrics, metricsRoutes } from "./metrics.ts";
import type { Registry } from "./registry.ts";
import { NO_SOCKETS, type SocketView } from "./socket_view.ts";
import type { UsageMeter } from "./usage.ts";

/** What the operations routes need from the rest of the server. */
export interface OperationsDeps {
  config: Config;
  adminToken: string;
  apps: AppStore;
  registry: Registry;
  instances: InstanceManager;
  storage: InstanceStorage;
  usage: UsageMeter;
  dispatch: DispatchDeps;
}

/** The observers and routes of operations. */
export class Operations {
  readonly index: InstanceIndex;
  readonly logs: LogRing = new LogRing();
  readonly metrics: Metrics = new Metrics();
  /** The host-side socket registry; the WebSocket layer replaces this when it is wired in. */
  sockets: SocketView = NO_SOCKETS;
  readonly observer: InstanceObserver;

  constructor(db: DatabaseSync) {
    this.index = new InstanceIndex(db);
    const { index, logs, metrics } = this;
    this.observer = {
      started(target) {
        index.record(target.app.appId, target.record.name, target.idHex, target.name);
        metrics.started(target.app.appId, target.record.name);
      },
      log(target, level, message) {
        const instance = target.name ?? target.idHex;
        logs.push({ level, app: target.app.appId, class: target.record.name, instance, message });
      },
      cpu(target, ms) {
        metrics.cpu(target.app.appId, target.record.name, ms);
      },
      memoryStopped(target, cause) {
        metrics.memoryStopped(target.app.appId, target.record.name, cause);
      },
    };
  }

  /**
   * Mounts the routes. Call it before the control API's body limit and before the data plane:
   * instance imports may be larger than control bodies, and requests are timed from the start.
   */
  mount(app: Hono, deps: OperationsDeps): void {
    const { config, adminToken, apps, registry, instances, storage } = deps;
    // Read through, so a socket registry wired in after mount() is seen.
    const sockets: SocketView = {
      count: (key) => this.sockets.count(key),
      hibernated: (key) => this.sockets.hibernated(key),
      holders: (appId, className) => this.sockets.holders(appId, className),
      totals: () => this.sockets.totals(),
    };
    app.use("/_do/*", countRequests(this.metrics, deps.dispatch));
    app.route(
      "/v1",
      inspectRoutes({
        adminToken,
        apps,
        registry,
        instances,
        storage,
        index: this.index,
        logs: this.logs,
        sockets,
        dataDir: config.dataDir,
        maxImportBytes: config.maxBodyBytes,
      }),
    );
    app.route(
      "/v1",
      backupRoutes({ adminToken, apps, usage: deps.usage, dataDir: config.dataDir }),
    );
    app.route(
      "/",
      metricsRoutes({
        metrics: this.metrics,
        adminToken,
        open: config.metricsPublic,
        apps,
        registry,
        instances,
        storage,
        sockets,
      }),
    );
  }

  /** Ends log followers (a graceful shutdown would otherwise wait for their streams). */
  endStreams(): void {
    this.logs.close();
  }
}
