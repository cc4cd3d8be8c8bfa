/**
 * The composition root: opens the data dir, builds the stores and the instance manager, and
 * mounts the routes on one Hono app. `main.ts` serves it; tests call `handler` directly or
 * serve it on port 0.
 */

import { join } from "node:path";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { AlarmScheduler } from "./alarm_scheduler.ts";
import { appRoutes } from "./app_routes.ts";
import { AppStore, type CreatedApp } from "./apps.ts";
import { initBundler } from "./bundler.ts";
import type { Config } from "./config.ts";
import { consoleRoutes } from "./console_routes.ts";
import { controlRoutes } from "./control.ts";
import { type DispatchDeps, dispatchHttp } from "./dispatch.ts";
import { errorResponse, ServerError } from "./errors.ts";
import { LocalInstanceStorage } from "./instance_storage.ts";
import { InstanceManager } from "./instances.ts";
import type { Logger } from "./log.ts";
import { EgressProxy } from "./egress_proxy.ts";
import { openMetaDb } from "./meta_db.ts";
import { mcpRoutes } from "./mcp.ts";
import { ObjectCalls } from "./object_calls.ts";
import { operatorRoutes } from "./operator_routes.ts";
import { Operations } from "./ops.ts";
import { startServerMemoryGuard } from "./memory_guard.ts";
import { LocalPlacement } from "./placement.ts";
import { Registry } from "./registry.ts";
import { ThreadSpawner } from "./thread_spawner.ts";
import { loadMasterKey, SecretBox, verifyMasterKey } from "./secret_box.ts";
import { randomToken } from "./secrets.ts";
import { UsageMeter } from "./usage.ts";
import { isWebSocketUpgrade, WebSocketBridge } from "./ws_bridge.ts";

/** Largest control-API request body (a 5 MB source plus JSON escaping). */
const CONTROL_BODY_LIMIT = 12 * 1024 * 1024;
/** How often usage counters are written to the meta database. */
const USAGE_FLUSH_MS = 5_000;

/** Secrets generated on the first start, printed once by `main.ts`. */
export interface FirstStart {
  adminToken: string | null;
  defaultApp: CreatedApp | null;
}

/** A running server's parts. */
export interface Server {
  handler: (request: Request, info?: Deno.ServeHandlerInfo) => Response | Promise<Response>;
  firstStart: FirstStart;
  adminToken: string;
  deps: DispatchDeps;
  /** Ends long-lived responses (log followers): call before a graceful HTTP shutdown. */
  endStreams(): void;
  /** Stops every instance (committing storage) and closes the databases. */
  close(): Promise<void>;
}

/** Builds the server for `config`. */
export async function createServer(config: Config, logger: Logger): Promise<Server> {
  await Deno.mkdir(config.dataDir, { recursive: true });
  const [admin, master] = await Promise.all([
    adminToken(config),
    loadMasterKey(config.dataDir, config.masterKey),
    initBundler(),
  ]);
  const db = openMetaDb(join(config.dataDir, "meta.sqlite"));
  const secrets = new SecretBox(master.key);
  try {
    verifyMasterKey(db, secrets);
  } catch (error) {
    db.close();
    throw error;
  }
  const egress = EgressProxy.start({ policy: config.outbound, logger });
  const apps = new AppStore(db, { secrets, fetch: egress.fetch });
  const defaultApp = apps.ensureDefault();
  const storage = new LocalInstanceStorage(config.dataDir);
  const usage = new UsageMeter(db);
  let instances: InstanceManager | null = null;
  const ops = new Operations(db);
  const spawner = new ThreadSpawner();
  const registry = new Registry(db, apps, {
    spawner,
    memoryLimitMb: config.memoryLimitMb,
    cpuLimitMs: config.cpuLimitMs,
    secrets,
    events: {
      stopInstances: (appId, name, reason) =>
        instances?.stopInstances(appId, name, reason) ?? Promise.resolve(),
      purgeClass: (appId, name) => storage.purgeClass(appId, name),
    },
  });
  const sockets = new WebSocketBridge({
    config,
    logger,
    instances: () => {
      if (!instances) throw new Error("unreachable: sockets before the instance manager");
      return instances;
    },
  });
  instances = new InstanceManager({
    config,
    registry,
    storage,
    placement: new LocalPlacement(),
    usage,
    logger,
    observer: ops.observer,
    egress: egress.endpoint,
    sockets,
    spawner,
  });
  ops.sockets = sockets.registry;
  const alarms = new AlarmScheduler({
    db,
    apps,
    registry,
    instances,
    logger,
    retryBaseMs: config.alarmRetryBaseMs,
  });
  const calls = new ObjectCalls({ registry, instances, usage, logger });
  instances.handle({
    alarmSet: (target, at) => alarms.alarmSet(target, at),
    aborted: (target, retryAlarm) => alarms.aborted(target, retryAlarm),
    call: (instance, callId, call) => calls.call(instance, callId, call),
  });
  const memoryGuard = startServerMemoryGuard(config.maxServerMemoryMb, instances, logger);
  const deps: DispatchDeps = { config, apps, registry, instances, usage };
  const flusher = setInterval(() => {
    try {
      usage.flush();
    } catch (error) {
      // A full disk must not end the server: the counts stay in memory for the next flush.
      logger.log("warn", `Could not write usage meters: ${(error as Error).message}`);
    }
  }, USAGE_FLUSH_MS);

  const app = new Hono();
  app.onError((error) => {
    if (error instanceof ServerError) return errorResponse(error);
    logger.log("error", `Unhandled error: ${error.stack ?? error.message}`);
    return errorResponse(
      new ServerError("INTERNAL_ERROR", "An internal error occurred while processing your request"),
    );
  });
  app.get("/healthz", (c) => c.json({ ok: true }));
  ops.mount(app, {
    config,
    adminToken: admin.token,
    apps,
    registry,
    instances,
    storage,
    usage,
    dispatch: deps,
  });
  app.use(
    "/v1/*",
    bodyLimit({
      maxSize: CONTROL_BODY_LIMIT,
      onError: () => {
        throw new ServerError("REQUEST_ERROR", "Request body is too large", {
          status: 413,
          reason: "BODY_TOO_LARGE",
          remediation: `Send at most ${CONTROL_BODY_LIMIT} bytes.`,
        });
      },
    }),
  );
  app.route(
    "/v1",
    controlRoutes({ adminToken: admin.token, apps, registry, instances, storage, usage }),
  );
  app.route("/v1", appRoutes({ adminToken: admin.token, apps }));
  app.route("/v1", operatorRoutes({ adminToken: admin.token, apps, registry, alarms, sockets }));
  app.route("/mcp", mcpRoutes({ adminToken: admin.token, apps, config }, (r) => app.fetch(r)));
  app.route(
    "/",
    consoleRoutes({
      adminToken: admin.token,
      apps,
      domain: config.domain,
      fetch: (r) => app.fetch(r),
    }),
  );
  app.all(
    "/_do/*",
    (c) => isWebSocketUpgrade(c.req.raw) ? sockets.upgrade(c, deps) : dispatchHttp(c, deps),
  );
  app.notFound((c) => {
    if (c.req.path.startsWith("/v1/")) {
      return errorResponse(
        new ServerError("RESOURCE_NOT_FOUND", `No route for ${c.req.method} ${c.req.path}`),
      );
    }
    return c.text("not found", 404);
  });

  return {
    handler: (request, info) =>
      egress.refusesControl(request, info?.remoteAddr) ?? app.fetch(request, { info }),
    firstStart: { adminToken: admin.generated ? admin.token : null, defaultApp },
    adminToken: admin.token,
    deps,
    endStreams: () => {
      ops.endStreams();
      // Closed here (1001), not by Deno's HTTP shutdown: each close would wake its object.
      sockets.closeAll(null, null, "shutdown");
    },
    async close() {
      ops.endStreams();
      clearInterval(flusher);
      sockets.close();
      alarms.close();
      memoryGuard?.close();
      await instances.close();
      await spawner.close();
      egress.close();
      usage.flush();
      db.close();
    },
  };
}

/** The admin token: `DOHOST_ADMIN_TOKEN`, or one kept in the data dir (made on first start). */
async function adminToken(config: Config): Promise<{ token: string; generated: boolean }> {
  if (config.adminToken) return { token: config.adminToken, generated: false };
  const path = join(config.dataDir, "admin_token");
  try {
    return { token: (await Deno.readTextFile(path)).trim(), generated: false };
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const token = `dh_admin_${randomToken(24)}`;
  await Deno.writeTextFile(path, token + "\n", { mode: 0o600 });
  return { token, generated: true };
}
