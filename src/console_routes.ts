/**
 * The web console at `/_console/`: a page, a script and a style sheet built from `console/`
 * into `console_assets.gen.ts`, so the server and a compiled binary serve them with no file
 * reads and nothing fetched from elsewhere. The page signs in with the admin token or a
 * service key and then only calls the control API, like any other client.
 *
 * One route is the console's own: `/_console/try/<appId>/_do/<class>/<id>…`, the relay of the
 * "try it" panel. The data plane picks the app by host name, and a page cannot set `Host` on
 * `fetch`; the relay rebuilds the request for `<subdomain>.<domain>` and hands it to the
 * server's own handler in-process, so it meets the same dispatch, access check, metering and
 * logs as a request from outside. It needs the console's token (in `X-Dohost-Console-Token`,
 * so the `Authorization` header stays the object's to use) for that app. It grants nothing a
 * client could not do by setting `Host` itself, and cookies are not forwarded.
 */

import { Hono } from "hono";
import { DEFAULT_APP_ID } from "./apps.ts";
import type { AppStore } from "./apps.ts";
import { controlPrincipal, visibleApp } from "./auth.ts";
import { ServerError } from "./errors.ts";
import { CONSOLE_CSS, CONSOLE_HTML, CONSOLE_JS, CONSOLE_VERSION } from "./console_assets.gen.ts";

/** What the console routes need. */
export interface ConsoleDeps {
  adminToken: string;
  apps: AppStore;
  /** `--domain`: apps are `<subdomain>.<domain>`. */
  domain: string;
  /** The server's own handler, for the relay. */
  fetch: (request: Request) => Response | Promise<Response>;
}

/** The header that carries the console's token on relayed requests. */
export const CONSOLE_TOKEN_HEADER = "x-dohost-console-token";

/** Request headers the relay drops: they describe the console page, not the tried request. */
const DROPPED = new Set([
  "host",
  "cookie",
  "connection",
  "origin",
  "referer",
]);

const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self' ws: wss:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const ASSET_CACHE = "public, max-age=31536000, immutable";

/** The `/_console` routes; mount at the root. */
export function consoleRoutes(deps: ConsoleDeps): Hono {
  const app = new Hono();
  const page = CONSOLE_HTML
    .replaceAll("%VERSION%", CONSOLE_VERSION)
    .replaceAll("%DOMAIN%", escapeAttribute(deps.domain));

  app.get("/_console", (c) => c.redirect("/_console/", 301));
  app.get("/_console/", () =>
    new Response(page, {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-cache",
        "content-security-policy": PAGE_CSP,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "x-frame-options": "DENY",
      },
    }));
  app.get("/_console/app.js", () => asset(CONSOLE_JS, "text/javascript; charset=utf-8"));
  app.get("/_console/app.css", () => asset(CONSOLE_CSS, "text/css; charset=utf-8"));

  app.all("/_console/try/:appId/_do/*", async (c) => {
    const token = c.req.header(CONSOLE_TOKEN_HEADER);
    const principal = controlPrincipal(token && `Bearer ${token}`, deps);
    const target = visibleApp(principal, c.req.param("appId"), deps.apps);
    if (c.req.header("upgrade")) {
      throw new ServerError("REQUEST_ERROR", "WebSockets are not relayed", {
        reason: "WEBSOCKET_NOT_RELAYED",
        remediation: "Open the WebSocket on the app's host: ws://<subdomain>.<domain>/_do/…",
      });
    }
    const url = new URL(c.req.url);
    const prefix = `/_console/try/${encodeURIComponent(target.appId)}`;
    const rest = url.pathname.startsWith(prefix)
      ? url.pathname.slice(prefix.length)
      : url.pathname.slice(url.pathname.indexOf("/_do/"));
    const host = target.appId === DEFAULT_APP_ID
      ? deps.domain
      : `${target.subdomain}.${deps.domain}`;
    const headers = new Headers();
    for (const [name, value] of c.req.raw.headers) {
      if (DROPPED.has(name) || name.startsWith("x-dohost-") || name.startsWith("sec-")) continue;
      headers.set(name, value);
    }
    const method = c.req.method;
    const hasBody = method !== "GET" && method !== "HEAD" && c.req.raw.body !== null;
    const relayed = new Request(`${url.protocol}//${host}${rest}${url.search}`, {
      method,
      headers,
      body: hasBody ? c.req.raw.body : null,
    });
    const response = await deps.fetch(relayed);
    const answer = new Headers(response.headers);
    // The object's answer is shown as text by the console; never rendered on its origin.
    answer.set("content-security-policy", "sandbox");
    answer.set("x-content-type-options", "nosniff");
    answer.delete("set-cookie");
    return new Response(response.body, {
      status: response.status,
      statusText: response.statusText,
      headers: answer,
    });
  });
  return app;
}

function asset(body: string, type: string): Response {
  return new Response(body, {
    headers: {
      "content-type": type,
      "cache-control": ASSET_CACHE,
      "x-content-type-options": "nosniff",
    },
  });
}

function escapeAttribute(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
}
