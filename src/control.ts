/**
 * The control API, compatible with Butterbase's `manage_durable_objects` REST routes: apps,
 * classes (deploy, list, get, delete, usage) and env vars. Each route parses its input,
 * calls the registry and answers JSON; every client mistake is a `ServerError` (4xx envelope).
 */

import { Hono } from "hono";
import { z } from "zod";
import { type App, type AppStore, DEFAULT_APP_ID } from "./apps.ts";
import { controlPrincipal, type Principal, requireAdmin, visibleApp } from "./auth.ts";
import { ServerError } from "./errors.ts";
import type { InstanceStorage } from "./instance_storage.ts";
import type { InstanceManager } from "./instances.ts";
import { ACCESS_MODES, type ClassRecord, type Registry } from "./registry.ts";
import type { UsageMeter } from "./usage.ts";

/** What the control routes need. */
export interface ControlDeps {
  adminToken: string;
  apps: AppStore;
  registry: Registry;
  instances: InstanceManager;
  storage: InstanceStorage;
  usage: UsageMeter;
}

/** Variables the auth middleware sets for the routes. */
export type ControlEnv = { Variables: { principal: Principal } };

const DeployBody = z.object({
  name: z.string().min(1, '"name" is required'),
  code: z.string().min(1, '"code" is required'),
  access_mode: z.enum(ACCESS_MODES as [string, ...string[]]).default("authenticated"),
  limits: z.object({ cpu_ms: z.number().optional(), memory_mb: z.number().optional() }).strict()
    .optional(),
});
const CreateAppBody = z.object({ name: z.string().min(1, '"name" is required') });
const SetEnvBody = z.object({ value: z.string() });

const NOT_FOUND_REMEDIATION = "Use list_durable_objects to see registered DOs.";

/**
 * A `/v1` sub-app whose routes all require the admin token or a service key; the caller is
 * in `c.get("principal")`. Other route files (operations, alarms, …) start from this.
 */
export function controlApp(deps: { adminToken: string; apps: AppStore }): Hono<ControlEnv> {
  const api = new Hono<ControlEnv>();
  api.use("*", async (c, next) => {
    c.set(
      "principal",
      controlPrincipal(c.req.header("authorization"), {
        adminToken: deps.adminToken,
        apps: deps.apps,
      }),
    );
    await next();
  });
  return api;
}

/** The app `appId` as the caller of `c` may see it (404 `App not found` otherwise). */
export function appOf(c: { get(key: "principal"): Principal }, apps: AppStore, appId: string): App {
  return visibleApp(c.get("principal"), appId, apps);
}

/** The `/v1` routes of apps, classes, env vars and usage. */
export function controlRoutes(deps: ControlDeps): Hono<ControlEnv> {
  const { apps, registry } = deps;
  const api = controlApp(deps);
  const app = (c: { get(key: "principal"): Principal }, appId: string): App =>
    appOf(c, apps, appId);

  api.post("/apps", async (c) => {
    requireAdmin(c.get("principal"));
    const body = parse(CreateAppBody, await json(c.req.raw));
    return c.json(apps.create(body.name));
  });

  api.get("/apps", (c) => {
    const principal = c.get("principal");
    const visible = apps.list().filter((item) =>
      principal.kind === "admin" || item.appId === principal.appId
    );
    return c.json({
      apps: visible.map((item) => ({
        app_id: item.appId,
        name: item.name,
        subdomain: item.subdomain,
        service_key_prefix: apps.keys.list(item.appId).at(-1)?.prefix ?? null,
        created_at: item.createdAt,
      })),
    });
  });

  api.delete("/apps/:appId", async (c) => {
    requireAdmin(c.get("principal"));
    const target = app(c, c.req.param("appId"));
    if (target.appId === DEFAULT_APP_ID) {
      throw new ServerError("REQUEST_ERROR", "Cannot delete app_default: it always exists", {
        reason: "DEFAULT_APP",
      });
    }
    await deps.instances.stopInstances(target.appId, null, "delete");
    registry.forgetApp(target.appId);
    apps.delete(target.appId);
    await deps.storage.purgeApp(target.appId);
    return c.json({ deleted: true, app_id: target.appId });
  });

  api.post("/:appId/durable-objects", async (c) => {
    const target = app(c, c.req.param("appId"));
    const body = parse(DeployBody, await json(c.req.raw));
    const record = await registry.deploy(target, {
      name: body.name,
      code: body.code,
      accessMode: body.access_mode as ClassRecord["accessMode"],
      limits: body.limits && { cpuMs: body.limits.cpu_ms, memoryMb: body.limits.memory_mb },
    });
    return c.json({
      id: record.id,
      name: record.name,
      status: record.status,
      class_name: record.className,
      access_mode: record.accessMode,
      last_deployed_at: record.lastDeployedAt,
    });
  });

  api.get("/:appId/durable-objects", (c) => {
    const target = app(c, c.req.param("appId"));
    return c.json({ durable_objects: registry.list(target.appId).map(summary) });
  });

  api.get("/:appId/durable-objects/env", (c) => {
    const target = app(c, c.req.param("appId"));
    return c.json({ keys: registry.envKeys(target.appId) });
  });

  api.put("/:appId/durable-objects/env/:key", async (c) => {
    const target = app(c, c.req.param("appId"));
    const envKey = c.req.param("key");
    const body = parse(SetEnvBody, await json(c.req.raw));
    const redeployed = await registry.setEnv(target.appId, envKey, body.value);
    return c.json({ key: envKey, redeployed });
  });

  api.delete("/:appId/durable-objects/env/:key", async (c) => {
    const target = app(c, c.req.param("appId"));
    const envKey = c.req.param("key");
    const redeployed = await registry.deleteEnv(target.appId, envKey);
    return c.json({ deleted: true, key: envKey, redeployed });
  });

  api.get("/:appId/durable-objects/:name", (c) => {
    const target = app(c, c.req.param("appId"));
    const record = registry.get(target.appId, c.req.param("name"));
    if (!record) {
      throw new ServerError("RESOURCE_NOT_FOUND", "Durable Object not found", {
        remediation: NOT_FOUND_REMEDIATION,
      });
    }
    return c.json({
      ...summary(record),
      code: record.code,
      created_at: record.createdAt,
      updated_at: record.updatedAt,
    });
  });

  api.delete("/:appId/durable-objects/:name", async (c) => {
    const target = app(c, c.req.param("appId"));
    const name = c.req.param("name");
    if (!await registry.delete(target.appId, name)) {
      throw new ServerError("RESOURCE_NOT_FOUND", "DO not found", {
        remediation: NOT_FOUND_REMEDIATION,
      });
    }
    return c.json({ deleted: true, name });
  });

  api.get("/:appId/durable-objects/:name/usage", async (c) => {
    const target = app(c, c.req.param("appId"));
    const storage = new Map<string, Map<string, number>>();
    for (const record of registry.list(target.appId)) {
      const files = await deps.storage.files(target.appId, record.name);
      storage.set(record.name, new Map(files.map((file) => [file.idHex, file.bytes])));
    }
    return c.json(deps.usage.report(target.appId, c.req.param("name"), storage));
  });

  return api;
}

/** The list view of a class (no code). */
function summary(record: ClassRecord): Record<string, unknown> {
  return {
    id: record.id,
    name: record.name,
    class_name: record.className,
    status: record.status,
    access_mode: record.accessMode,
    last_deployed_at: record.lastDeployedAt,
    error_message: record.errorMessage,
  };
}

/** Reads a JSON body; a missing or malformed one is a 400. */
export async function json(request: Request): Promise<unknown> {
  const text = await request.text();
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new ServerError("REQUEST_ERROR", "Request body is not valid JSON", {
      reason: "INVALID_JSON",
      remediation: "Send a JSON object with Content-Type: application/json.",
    });
  }
}

/** Validates `input` with `schema`; failures are a 400 naming the fields. */
export function parse<T>(schema: z.ZodType<T>, input: unknown): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const message = result.error.issues
    .map((issue) => `${issue.path.join(".") || "body"}: ${issue.message}`)
    .join("; ");
  throw new ServerError("VALIDATION_INVALID_SCHEMA", message, {
    reason: "INVALID_BODY",
    remediation: "Fix the request body and retry.",
  });
}
