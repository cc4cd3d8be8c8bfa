/**
 * Control routes for an app's credentials: its end-user JWT settings (`PATCH /v1/apps/:appId`)
 * and its service keys (create, list, revoke). The admin token may manage any app; a service
 * key only its own app (any other app is a 404, as everywhere in the control API). Secrets are
 * never returned after creation: keys are listed by prefix, the JWT secret not at all.
 */

import type { Hono } from "hono";
import { z } from "zod";
import { type JwtSettingsPatch, publicSettings } from "./app_auth.ts";
import type { App, AppStore } from "./apps.ts";
import { appOf, controlApp, type ControlEnv, json, parse } from "./control.ts";
import { ServerError } from "./errors.ts";
import type { ServiceKeyInfo } from "./service_keys.ts";

const PatchAppBody = z.object({
  jwt: z.object({
    jwks: Nullable(z.object({ keys: z.array(z.record(z.string(), z.unknown())) })),
    jwks_url: Nullable(z.string()),
    issuer: Nullable(z.string()),
    audience: Nullable(z.union([z.string(), z.array(z.string())])),
  }).strict(),
}).strict();

const CreateKeyBody = z.object({
  name: z.string().min(1).max(100).optional(),
}).strict();

/** Routes under `/v1/apps/:appId`. */
export function appRoutes(deps: { adminToken: string; apps: AppStore }): Hono<ControlEnv> {
  const { apps } = deps;
  const api = controlApp(deps);

  api.get("/apps/:appId", (c) => c.json(appView(appOf(c, apps, c.req.param("appId")), apps)));

  api.patch("/apps/:appId", async (c) => {
    const app = appOf(c, apps, c.req.param("appId"));
    const body = parse(PatchAppBody, await json(c.req.raw));
    const patch: JwtSettingsPatch = {};
    const jwt = body.jwt;
    if (jwt.jwks !== undefined) patch.jwks = jwt.jwks as JwtSettingsPatch["jwks"];
    if (jwt.jwks_url !== undefined) patch.jwksUrl = jwt.jwks_url;
    if (jwt.issuer !== undefined) patch.issuer = jwt.issuer;
    if (jwt.audience !== undefined) {
      patch.audience = typeof jwt.audience === "string" ? [jwt.audience] : jwt.audience;
    }
    await apps.auth.update(app.appId, patch);
    return c.json(appView(app, apps));
  });

  api.post("/apps/:appId/keys", async (c) => {
    const app = appOf(c, apps, c.req.param("appId"));
    const body = parse(CreateKeyBody, await json(c.req.raw));
    const { key, info } = apps.keys.create(app.appId, body.name ?? "key");
    return c.json({ ...keyView(info), service_key: key });
  });

  api.get("/apps/:appId/keys", (c) => {
    const app = appOf(c, apps, c.req.param("appId"));
    return c.json({ keys: apps.keys.list(app.appId).map(keyView) });
  });

  api.delete("/apps/:appId/keys/:keyId", (c) => {
    const app = appOf(c, apps, c.req.param("appId"));
    const keyId = c.req.param("keyId");
    if (!apps.keys.revoke(app.appId, keyId)) {
      throw new ServerError("RESOURCE_NOT_FOUND", "Service key not found", {
        remediation: "List the app's keys with GET /v1/apps/:appId/keys.",
      });
    }
    return c.json({ revoked: true, key_id: keyId });
  });

  return api;
}

function Nullable<T extends z.ZodType>(schema: T) {
  return schema.nullable().optional();
}

function appView(app: App, apps: AppStore): Record<string, unknown> {
  return {
    app_id: app.appId,
    name: app.name,
    subdomain: app.subdomain,
    created_at: app.createdAt,
    jwt: publicSettings(apps.auth.settings(app.appId)),
  };
}

function keyView(info: ServiceKeyInfo): Record<string, unknown> {
  return { key_id: info.keyId, name: info.name, prefix: info.prefix, created_at: info.createdAt };
}
