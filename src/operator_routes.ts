/**
 * Operator endpoints on the control API (admin token only, never on the public `/_do/` path):
 * actions that make an instance do now what it would otherwise do later, so tests and
 * operators need not wait for Cloudflare's timings.
 *
 * - `POST /v1/:appId/durable-objects/:name/instances/:id/alarm` runs the instance's pending
 *   alarm now and answers once the handler has finished, with its outcome; 404 when no alarm
 *   is set. A failure is retried on the usual schedule, as if the alarm had fired.
 * - `POST /v1/:appId/durable-objects/:name/instances/:id/evict?websockets=hibernate|close`
 *   stops the instance's worker now (answering once it is stopped). `hibernate` (the default)
 *   keeps its hibernatable WebSockets open, as hibernation does; `close` closes every socket
 *   with 1001 first. `accept()`-ed sockets cannot outlive the worker and close with 1001.
 *
 * `:id` is the instance name as used in `/_do/<class>/<id>`, or its 64-hex id.
 */

import type { Context, Hono } from "hono";
import { isObjectIdOf, objectIdFromName } from "../workers/protocol.ts";
import type { AlarmScheduler } from "./alarm_scheduler.ts";
import type { AppStore } from "./apps.ts";
import { requireAdmin } from "./auth.ts";
import { appOf, controlApp, type ControlEnv } from "./control.ts";
import { ServerError } from "./errors.ts";
import { keyOf } from "./instances.ts";
import type { Registry } from "./registry.ts";
import type { WebSocketBridge } from "./ws_bridge.ts";

/** What the operator routes need. */
export interface OperatorDeps {
  adminToken: string;
  apps: AppStore;
  registry: Registry;
  alarms: AlarmScheduler;
  sockets: WebSocketBridge;
}

/** The operator routes, mounted under `/v1`. */
export function operatorRoutes(deps: OperatorDeps): Hono<ControlEnv> {
  const api = controlApp(deps);
  const base = "/:appId/durable-objects/:name/instances/:id";

  api.post(`${base}/alarm`, async (c) => {
    requireAdmin(c.get("principal"));
    const { appId, className, idHex } = instanceOf(c, deps);
    const run = await deps.alarms.runNow(appId, className, idHex);
    if (!run) {
      throw new ServerError("RESOURCE_NOT_FOUND", "No alarm is set for this instance", {
        reason: "NO_ALARM",
        remediation: "Call setAlarm() in the object first; getAlarm() shows the pending alarm.",
      });
    }
    return c.json({
      outcome: run.outcome,
      error: run.error,
      retry_count: run.retryCount,
      next_alarm: run.nextAt,
    });
  });

  api.post(`${base}/evict`, async (c) => {
    requireAdmin(c.get("principal"));
    const mode = c.req.query("websockets") ?? "hibernate";
    if (mode !== "hibernate" && mode !== "close") {
      throw new ServerError(
        "VALIDATION_INVALID_SCHEMA",
        `websockets: expected "hibernate" or "close", got "${mode}"`,
        {
          reason: "INVALID_QUERY",
          remediation: "Pass ?websockets=hibernate or ?websockets=close.",
        },
      );
    }
    const { appId, className, idHex } = instanceOf(c, deps);
    const result = await deps.sockets.evict(keyOf(appId, className, idHex), mode);
    return c.json({ evicted: result.evicted, websockets: mode, sockets_open: result.sockets });
  });

  return api;
}

/** The instance `:id` names: a 64-hex id of this class, or an instance name. */
function instanceOf(
  c: Context<ControlEnv>,
  deps: OperatorDeps,
): { appId: string; className: string; idHex: string } {
  const app = appOf(c, deps.apps, c.req.param("appId") ?? "");
  const record = deps.registry.get(app.appId, c.req.param("name") ?? "");
  if (!record) {
    throw new ServerError("RESOURCE_NOT_FOUND", "Durable Object not found", {
      remediation: "Use list_durable_objects to see registered DOs.",
    });
  }
  const id = c.req.param("id") ?? "";
  const namespace = `${app.appId}/${record.name}`;
  const idHex = isObjectIdOf(namespace, id) ? id : objectIdFromName(namespace, id);
  return { appId: app.appId, className: record.name, idHex };
}
