/**
 * Who is calling. The control API takes the admin token or an app's service key; the data
 * plane applies a class's access mode (`public`, `service_key`, `authenticated`) before any
 * instance is woken. Secrets are compared in constant time; JWTs are verified with jose
 * (`app_auth.ts`: HS256 with the app's secret or the app's JWKS, `exp`/`nbf` honoured,
 * `alg: none` refused). The admin token and service keys are separate namespaces: a service
 * key only ever names its own app.
 */

import type { App, AppStore } from "./apps.ts";
import { ServerError } from "./errors.ts";
import type { AccessMode } from "./registry.ts";
import { timingSafeEqualText } from "./secrets.ts";

/** A caller of the control API. */
export type Principal = { kind: "admin" } | { kind: "app"; appId: string };

/** Resolves the control-API caller from the `Authorization` header. */
export function controlPrincipal(
  header: string | undefined,
  options: { adminToken: string; apps: AppStore },
): Principal {
  const token = bearer(header);
  if (token === null) {
    throw new ServerError("REQUEST_ERROR", "Authentication required", { status: 401 });
  }
  if (timingSafeEqualText(token, options.adminToken)) return { kind: "admin" };
  if (token.startsWith("bb_sk_")) {
    const app = options.apps.byServiceKey(token);
    if (!app) throw new ServerError("AUTH_INVALID_API_KEY", "Invalid or revoked API key");
    return { kind: "app", appId: app.appId };
  }
  throw new ServerError("AUTH_INVALID_TOKEN", "Invalid JWT token");
}

/** The app `appId` if the principal may see it; otherwise 404 (never 403, as the original). */
export function visibleApp(principal: Principal, appId: string, apps: AppStore): App {
  const app = apps.get(appId);
  if (!app || (principal.kind === "app" && principal.appId !== appId)) {
    throw new ServerError("RESOURCE_NOT_FOUND", "App not found", {
      remediation: "Verify the app_id is correct.",
    });
  }
  return app;
}

/** Requires the admin token. */
export function requireAdmin(principal: Principal): void {
  if (principal.kind !== "admin") {
    throw new ServerError("AUTH_FORBIDDEN", "This action needs the admin token", {
      remediation: "Call it with DOHOST_ADMIN_TOKEN as the bearer token.",
    });
  }
}

/** Whether a data-plane request may reach a class with access mode `mode`. */
export async function allowedByAccessMode(
  mode: AccessMode,
  app: App,
  token: string | null,
  apps: AppStore,
): Promise<boolean> {
  switch (mode) {
    case "public":
      return true;
    case "service_key":
      return token !== null && apps.keys.appOf(token) === app.appId;
    case "authenticated":
      return token !== null && await apps.auth.verify(app.appId, app.jwtSecret, token);
    default: {
      const unknown: never = mode;
      throw new Error(`Unknown access mode ${unknown}`);
    }
  }
}

/** The bearer token of an `Authorization` header, or null. */
export function bearer(header: string | null | undefined): string | null {
  if (!header || !header.startsWith("Bearer ")) return null;
  const token = header.slice(7).trim();
  return token || null;
}
